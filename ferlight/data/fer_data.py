"""The one in-memory form of FER2013 that every reader produces and every consumer takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.errors import DataError

# FER2013's label numbers 0..6, in order.
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# FER+ adds contempt as label 7.
FERPLUS_CLASS_NAMES = CLASS_NAMES + ("contempt",)
# The values of the Kaggle CSV's Usage column; FERData.usage holds indices into this tuple.
USAGES = ("Training", "PublicTest", "PrivateTest")


@dataclass(frozen=True, eq=False)
class FERData:
    """Faces, their labels and the Usage (split) of each row, checked to be consistent.

    ``images`` uint8 N x 48 x 48, ``labels`` int64 N (indices into ``class_names``), ``usage`` int8 N
    (indices into :data:`USAGES`).
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        n = len(self.images)
        expected = {
            "images": (self.images, np.uint8, (n, IMAGE_SIZE, IMAGE_SIZE)),
            "labels": (self.labels, np.int64, (n,)),
            "usage": (self.usage, np.int8, (n,)),
        }
        for name, (array, dtype, shape) in expected.items():
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
                got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
                raise DataError(f"FERData.{name} must be {np.dtype(dtype)} {shape}, got {got}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(f"FERData.labels must lie in 0..{len(self.class_names) - 1}")
        if n and (self.usage.min() < 0 or self.usage.max() >= len(USAGES)):
            raise DataError(f"FERData.usage must lie in 0..{len(USAGES) - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> FERData:
        """The rows selected by an index or boolean array, as a new FERData."""
        return FERData(self.images[rows], self.labels[rows], self.usage[rows], self.class_names)
