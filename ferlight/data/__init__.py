"""FER2013 data: readers for every public layout, the protocols, augmentation and the DataModule.

Names are imported on first use (PEP 562), so that ``ferlight.data.preprocess``, which live
inference needs, does not pull in Lightning, OpenCV or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what static analysers see; at run time __getattr__ imports on demand
    from ferlight.data.augment import BatchAugment
    from ferlight.data.datamodule import FER2013DataModule
    from ferlight.data.fer_data import CLASS_NAMES, FERPLUS_CLASS_NAMES, USAGES, FERData
    from ferlight.data.image_folders import write_image_folders
    from ferlight.data.kaggle_csv import write_fer2013_csv
    from ferlight.data.load import load_fer2013
    from ferlight.data.protocols import split_protocol

_EXPORTS = {
    "CLASS_NAMES": "fer_data",
    "FERPLUS_CLASS_NAMES": "fer_data",
    "USAGES": "fer_data",
    "FERData": "fer_data",
    "load_fer2013": "load",
    "split_protocol": "protocols",
    "FER2013DataModule": "datamodule",
    "BatchAugment": "augment",
    "write_fer2013_csv": "kaggle_csv",
    "write_image_folders": "image_folders",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
