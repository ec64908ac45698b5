"""The crop that reaches the model: the region of a frame cut around a detector's face box.

FER2013 faces have their own framing, and the model only knows that framing, so what the live path
feeds it should look like a FER2013 face. :func:`crop_box` derives the crop rectangle from a
detector box ``(x, y, w, h)``:

- ``margin``: the box grown by this fraction of its side on each side (negative shrinks it);
- ``aspect``: the crop's height / width (the model's input is square, so anything but 1 is
  squashed when it is resized to 48 x 48);
- ``shift``: the centre moved down by this fraction of the box side.

:func:`face_crops` cuts those rectangles out of the frame. A crop that runs past the frame edge is
``"replicate"``-padded (the edge pixels repeated, keeping the face's scale and place in the crop),
``"zero"``-padded (black, as MTCNN's networks take their crops) or ``"clip"``-ped to the frame (the crop then holds less than asked for and is stretched by the
resize). Numpy and OpenCV only.

Measured with ``bench/bench_live_crop.py`` (FER2013 faces rendered at 90-200 px into 640 x 480
natural images, the live detector with its defaults, the shipped model; chosen on PublicTest,
measured once on PrivateTest), the detector's box itself is the crop, for both shipped detectors:

- MTCNN (the default; its box is taller than wide, h / w 1.28 at the median, and the crop is the
  square on its longer side): on PublicTest the box was 1.8 points below the direct evaluation of the same
  faces; shrinking it (margin -0.05) gained 0.6 +- 0.6 points, within noise, and any margin above
  0 or shift of 0.05 lost 0.1-3 points. PrivateTest: 1.5 points below.
- Haar: its box on a FER2013 face is already that face's own framing (median face side / box side
  1.02-1.06, centred); every margin (-0.1 to 0.3), aspect (1 to 1.2) or shift (-0.05 to 0.1) was
  worse, by 1-2 points already at margin +-0.05.

What is left of the gap comes from how the box's scale varies from face to face, which no fixed
geometry removes (FER2013's own framing varies as much relative to the eyes and mouth): cropping
the pasted square itself scores 0.4-0.7 points above the direct evaluation.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# Chosen on PublicTest (bench/bench_live_crop.py --split val --grid; Haar: --margins -0.1 ... 0.3
# --aspects 1 1.1 1.2 --shifts -0.05 ... 0.1; MTCNN: --margins -0.05 -0.025 0 0.025 0.05 --aspects 1
# --shifts -0.05 0 0.05): the detector's box as it is.
CROP_MARGIN = 0.0
CROP_ASPECT = 1.0
CROP_SHIFT = 0.0
# A crop past the frame edge: "replicate" pads with the edge pixels, "zero" with black (what MTCNN's
# networks were trained on), "clip" cuts it at the edge.
# bench/bench_live_crop.py --split val --placement cut --edge-modes replicate clip --extra-margins 0.1 0.2
# (PublicTest faces 5-30% past the frame edge): replicate beats clip by 0.5 points at margin 0.1 and
# 2.0 at margin 0.2. With margin 0 only a box that itself runs past the edge (MTCNN's can) does.
CROP_EDGE = "replicate"
EDGE_MODES = ("replicate", "zero", "clip")


def crop_box(
    box: Sequence[float], margin: float = CROP_MARGIN, aspect: float = CROP_ASPECT, shift: float = CROP_SHIFT
) -> tuple[int, int, int, int]:
    """The crop rectangle ``(x, y, w, h)`` (ints, possibly past the frame) for a detector box.

    The box's side is ``max(w, h)``; the crop is ``side * (1 + 2 * margin)`` wide and ``aspect``
    times that high (at least 1 px each), centred on the box's centre moved down by
    ``shift * side``. Measured on the Haar cascade's square boxes only; a non-square box (YuNet's)
    is made square on its longer side, which is not measured.
    """
    x, y, w, h = (float(v) for v in box)
    if not (w > 0 and h > 0):
        raise ValueError(f"a face box needs a positive width and height, got {tuple(box)}")
    if not aspect > 0:
        raise ValueError(f"aspect must be positive, got {aspect!r}")
    if not 1 + 2 * margin > 0:
        raise ValueError(f"margin must be above -0.5 (the crop would vanish), got {margin!r}")
    side = max(w, h)
    width = max(1, int(round(side * (1 + 2 * margin))))
    height = max(1, int(round(width * aspect)))
    cx, cy = x + w / 2, y + h / 2 + shift * side
    left, top = int(np.floor(cx - width / 2 + 0.5)), int(np.floor(cy - height / 2 + 0.5))
    return left, top, width, height


def cut(image: np.ndarray, rect: Sequence[int], edge: str = CROP_EDGE) -> np.ndarray:
    """``image`` (H x W or H x W x C) inside ``rect = (x, y, w, h)``; the part past the frame is
    replicate- or zero-padded (the result is then always h x w) or clipped away, as ``edge`` says.
    A crop that lies wholly inside the frame is a view of ``image``, not a copy."""
    if edge not in EDGE_MODES:
        raise ValueError(f"unknown edge mode {edge!r}; choose from {', '.join(EDGE_MODES)}")
    x, y, w, h = (int(v) for v in rect)
    height, width = image.shape[:2]
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, width), min(y + h, height)
    if right <= left or bottom <= top:
        raise ValueError(f"the crop {(x, y, w, h)} lies wholly outside the {width} x {height} image")
    inside = image[top:bottom, left:right]
    if edge == "clip" or (left, top, right, bottom) == (x, y, x + w, y + h):
        return inside
    border = cv2.BORDER_REPLICATE if edge == "replicate" else cv2.BORDER_CONSTANT
    return cv2.copyMakeBorder(inside, top - y, y + h - bottom, left - x, x + w - right, border, value=0)


def face_crops(
    image: np.ndarray,
    boxes: np.ndarray | Sequence[Sequence[float]],
    *,
    margin: float = CROP_MARGIN,
    aspect: float = CROP_ASPECT,
    shift: float = CROP_SHIFT,
    edge: str = CROP_EDGE,
) -> list[np.ndarray]:
    """One crop per detector box ``(x, y, w, h)`` of ``image``, in the boxes' order (see
    :func:`crop_box` for the geometry and :func:`cut` for the frame edge)."""
    return [cut(image, crop_box(box, margin, aspect, shift), edge) for box in np.asarray(boxes).reshape(-1, 4)]
