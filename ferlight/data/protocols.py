"""The evaluation protocols: which rows of FER2013 are train, validation and test.

- ``paper`` (the 2019 paper reproduced here): the Training rows split 90/10, stratified by class,
  with a fixed seed; test = PublicTest + PrivateTest. The split is scikit-learn's
  ``train_test_split(test_size=0.1, stratify=labels)``: validation gets ceil(0.1 x 28,709) = 2,871
  rows, shared among the classes in proportion with ties broken by the seed, and train the other
  25,838; test has 7,178.
- ``standard``: train = Training (28,709), validation = PublicTest, test = PrivateTest (3,589 each).

Model selection uses the validation split only; neither protocol lets it see a test row.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from ferlight.data.fer_data import USAGES, FERData
from ferlight.errors import DataError
from ferlight.options import PROTOCOLS, SPLITS, check_choice

PAPER_VAL_FRACTION = 0.1


def split_protocol(data: FERData, protocol: str = "paper", seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices (sorted int64) of ``data`` for "train", "val" and "test" under ``protocol``."""
    check_choice("protocol", protocol, PROTOCOLS)
    training, public, private = (np.flatnonzero(data.usage == USAGES.index(u)) for u in USAGES)
    if protocol == "paper":
        train, val = _stratified_split(data, training, seed)
        splits = {"train": train, "val": val, "test": np.concatenate([public, private])}
    else:
        splits = {"train": training, "val": public, "test": private}
    for name, rows in splits.items():
        if len(rows) == 0:
            raise DataError(f"protocol {protocol!r} has an empty {name} split: the data has {_usage_counts(data)}")
    return {name: np.sort(rows).astype(np.int64) for name, rows in splits.items()}


def _stratified_split(data: FERData, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` split 90/10 with the class proportions kept in both parts."""
    if len(rows) == 0:
        raise DataError(f"protocol 'paper' splits the Training rows, but the data has {_usage_counts(data)}")
    try:
        return train_test_split(rows, test_size=PAPER_VAL_FRACTION, stratify=data.labels[rows], random_state=seed)
    except ValueError as err:  # too few rows of a class to stratify
        raise DataError(f"cannot split the {len(rows)} Training rows 90/10 by class: {err}") from None


def _usage_counts(data: FERData) -> str:
    return ", ".join(f"{np.count_nonzero(data.usage == code)} {name}" for code, name in enumerate(USAGES))
