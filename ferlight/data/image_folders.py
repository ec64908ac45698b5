"""Read and write FER2013 as per-class image folders, the layout of most Kaggle mirrors.

The layout is ``<root>/<split>/<emotion>/<image>``, for instance ``train/angry/Training_123.jpg``
or ``test/happy/PublicTest_9.png``. The split of each face comes from its file name's prefix
(``Training_``, ``PublicTest_``, ``PrivateTest_``) when present, otherwise from the split folder:
``train``/``training`` -> Training, ``val``/``valid``/``validation``/``publictest`` -> PublicTest,
``test``/``privatetest`` -> PrivateTest. (A ``test`` folder without prefixed names therefore
counts as PrivateTest, and the ``standard`` protocol will find no PublicTest rows in it.)

Faces are ordered by the number at the end of their file name, then by path, so folders written by
:func:`write_image_folders` (named ``<Usage>_<row>.png``) read back in their original row order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from ferlight.atomic import atomic_output
from ferlight.data.fer_data import CLASS_NAMES, USAGES, FERData
from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.errors import DataError

SPLIT_FOLDERS = {
    "train": "Training",
    "training": "Training",
    "val": "PublicTest",
    "valid": "PublicTest",
    "validation": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}
# Where write_image_folders puts each Usage, as the Kaggle mirrors do.
WRITE_FOLDERS = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
USAGE_PREFIX = re.compile(r"^(Training|PublicTest|PrivateTest)_")
TRAILING_NUMBER = re.compile(r"(\d+)$")


def image_files(root: str | os.PathLike) -> list[Path]:
    """Every face image under ``root``, in reading order; DataError for a file or folder out of place."""
    root = Path(root)
    files = []
    for split_dir in _visible(root):
        if not split_dir.is_dir() or split_dir.name.lower() not in SPLIT_FOLDERS:
            raise DataError(f"{split_dir}: expected split folders named {', '.join(sorted(set(SPLIT_FOLDERS)))}")
        for class_dir in _visible(split_dir):
            if not class_dir.is_dir() or class_dir.name.lower() not in CLASS_NAMES:
                raise DataError(f"{class_dir}: not an emotion folder; expected one of {', '.join(CLASS_NAMES)}")
            files.extend(_visible(class_dir))
    if not files:
        raise DataError(f"{root}: no images found (expected <split>/<emotion>/<image> below it)")
    return sorted(files, key=_reading_order)


def read_image_folders(root: str | os.PathLike) -> FERData:
    """Load the faces under ``root`` (see the module docstring for the layout)."""
    files = image_files(root)
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    labels = np.empty(len(files), np.int64)
    usage = np.empty(len(files), np.int8)
    for row, path in enumerate(files):
        images[row] = _read_face(path)
        labels[row] = CLASS_NAMES.index(path.parent.name.lower())
        prefix = USAGE_PREFIX.match(path.name)
        usage[row] = USAGES.index(prefix.group(1) if prefix else SPLIT_FOLDERS[path.parent.parent.name.lower()])
    return FERData(images, labels, usage)


def write_image_folders(data: FERData, root: str | os.PathLike, extension: str = ".png") -> None:
    """Write ``data`` as ``<root>/train|test/<emotion>/<Usage>_<row><extension>``; atomic.

    ``root`` must not exist yet (or be empty). Use a lossless extension (.png, .bmp) for an exact
    round trip.
    """
    if data.class_names != CLASS_NAMES:
        raise DataError(f"{root}: image folders hold the 7 FER2013 classes, not {', '.join(data.class_names)}")
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root} already exists and is not an empty folder")
    with atomic_output(root) as tmp:
        for split in set(WRITE_FOLDERS.values()):
            for name in CLASS_NAMES:
                (tmp / split / name).mkdir(parents=True)
        for row, (image, label, code) in enumerate(zip(data.images, data.labels, data.usage)):
            usage = USAGES[code]
            path = tmp / WRITE_FOLDERS[usage] / CLASS_NAMES[label] / f"{usage}_{row}{extension}"
            try:
                written = cv2.imwrite(str(path), image)
            except cv2.error:
                written = False
            if not written:
                raise DataError(f"{root}: cannot write {path.name} (is {extension!r} an image format OpenCV writes?)")


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` that are not hidden (``.DS_Store`` and the like)."""
    return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]


def _reading_order(path: Path) -> tuple[int, str]:
    number = TRAILING_NUMBER.search(path.stem)
    return (int(number.group(1)) if number else -1, str(path))


def _read_face(path: Path) -> np.ndarray:
    """A 48 x 48 grey image from ``path`` (colour images are converted to grey)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"{path}: not an image (OpenCV cannot decode it)")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    return image
