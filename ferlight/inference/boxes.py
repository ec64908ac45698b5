"""Face boxes ``(x, y, w, h)`` compared: their overlap, and which box of one set is which of another.

The face detector (near-duplicate faces), the face tracks (a detection continues a track) and the
live benchmark's scoring (a detection finds a true face) all match boxes the same way. Numpy only.
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (N x 4, x y w h) with every box of ``b`` (M x 4)."""
    a, b = np.asarray(a, dtype=np.float64)[:, None], np.asarray(b, dtype=np.float64)[None]
    left = np.maximum(a[..., 0], b[..., 0])
    top = np.maximum(a[..., 1], b[..., 1])
    right = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    bottom = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def match_boxes(a: np.ndarray, b: np.ndarray, min_iou: float) -> dict[int, int]:
    """Greedy one-to-one matching of boxes ``a`` to boxes ``b``, best overlap first, pairs of IoU
    >= ``min_iou`` only: {index in a: index in b}."""
    if not len(a) or not len(b):
        return {}
    iou = box_iou(a, b)
    pairs: dict[int, int] = {}
    for flat in np.argsort(iou, axis=None)[::-1]:
        i, j = (int(k) for k in np.unravel_index(flat, iou.shape))
        if iou[i, j] < min_iou:
            break
        if i not in pairs and j not in pairs.values():
            pairs[i] = j
    return pairs
