"""Read the compact copy of FER2013: raw uint8 faces, xz-compressed, with their labels beside them.

``fer2013_images.u8.xz`` holds N x 48 x 48 grey levels in C order (the CSV's row order) and
``fer2013_labels.csv`` (same folder) the header ``emotion,Usage`` and one row per face. At 61 MB it
is small enough to carry where the 94 MB ``fer2013.csv.gz`` is not.
"""

from __future__ import annotations

import lzma
import os
from pathlib import Path

import numpy as np

from ferlight.data.fer_data import CLASS_NAMES, USAGES, FERData
from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.errors import DataError

SUFFIX = ".u8.xz"
LABELS_NAME = "fer2013_labels.csv"
LABELS_HEADER = "emotion,Usage"


def labels_path(images_path: str | os.PathLike) -> Path:
    """Where the labels of a compact image file live."""
    return Path(images_path).with_name(LABELS_NAME)


def read_compact(path: str | os.PathLike) -> FERData:
    """Load ``fer2013_images.u8.xz`` and the ``fer2013_labels.csv`` beside it."""
    path = Path(path)
    labels, usage = _read_labels(labels_path(path))
    try:
        with lzma.open(path) as f:
            raw = f.read()
    except (lzma.LZMAError, EOFError) as err:
        raise DataError(f"{path}: xz data is truncated or corrupt ({err})") from None
    face_bytes = IMAGE_SIZE * IMAGE_SIZE
    if len(raw) % face_bytes:
        raise DataError(f"{path}: {len(raw)} bytes is not a whole number of {IMAGE_SIZE}x{IMAGE_SIZE} faces")
    if len(raw) // face_bytes != len(labels):
        raise DataError(f"{path} holds {len(raw) // face_bytes} faces but {labels_path(path)} has {len(labels)} rows")
    images = np.frombuffer(raw, np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).copy()
    return FERData(images, labels, usage)


def _read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, usage codes) from a ``emotion,Usage`` file; DataError naming the line if malformed."""
    if not path.is_file():
        raise DataError(f"{path} not found: the labels of the compact FER2013 images must lie beside them")
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    if not lines:
        raise DataError(f"{path} is empty (expected the header {LABELS_HEADER!r})")
    if lines[0].strip() != LABELS_HEADER:
        raise DataError(f"{path}, line 1: header is {lines[0][:40]!r}, expected {LABELS_HEADER!r}")
    classes = {str(k): k for k in range(len(CLASS_NAMES))}
    labels = np.empty(len(lines) - 1, np.int64)
    usage = np.empty(len(lines) - 1, np.int8)
    for row, line in enumerate(lines[1:]):
        emotion, _, split = line.partition(",")
        where = f"{path}, line {row + 2}"
        if emotion not in classes:
            raise DataError(f"{where}: emotion {emotion!r} is not a class number 0..{len(CLASS_NAMES) - 1}")
        if split not in USAGES:
            raise DataError(f"{where}: unknown Usage {split!r}; expected {', '.join(USAGES)}")
        labels[row], usage[row] = classes[emotion], USAGES.index(split)
    return labels, usage
