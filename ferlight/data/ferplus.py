"""FER+ relabelling of FER2013 (Microsoft FERPlus, ``fer2013new.csv``), joined row by row.

Each line of ``fer2013new.csv`` holds, for the FER2013 row of the same number, its Usage, the image
name (empty when the face is not a face) and the votes of 10 annotators for neutral, happiness,
surprise, sadness, anger, disgust, fear, contempt, unknown and NF (not a face).

Labels follow the "majority" mode of FERPlus's own reader (``src/ferplus.py``): votes of 1 are
dropped as outliers; a face keeps the class with more than half of the remaining votes; faces with
no such class, whose winner is unknown or NF, or with no image name are dropped. Classes are
:data:`FERPLUS_CLASS_NAMES` (FER2013's seven plus contempt). (FERPlus's reader tests the winner
with ``idx < emotion_count - 2`` where ``emotion_count`` is 8, which also drops fear and contempt
winners; we follow the stated rule, dropping only unknown and NF.)

Measured on the FER2013 in ``../shared/data`` (Training / PublicTest / PrivateTest), 31,412 of
35,887 faces kept: 25,060 / 3,199 / 3,153. Per class (angry, disgust, fear, happy, sad, surprise,
neutral, contempt):

- Training: 2100 / 119 / 532 / 7287 / 3014 / 3149 / 8740 / 119
- PublicTest: 287 / 24 / 62 / 865 / 351 / 415 / 1182 / 13
- PrivateTest: 273 / 18 / 83 / 893 / 384 / 396 / 1090 / 16
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ferlight.data.fer_data import FERPLUS_CLASS_NAMES, USAGES, FERData
from ferlight.errors import DataError

FERPLUS_NAME = "fer2013new.csv"
# FER+'s emotion columns, in file order, with ferlight's name for each.
FERPLUS_EMOTIONS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
}
HEADER = ["Usage", "Image name", *FERPLUS_EMOTIONS, "unknown", "NF"]
VOTES = slice(2, 12)
LABEL_OF_COLUMN = np.array([FERPLUS_CLASS_NAMES.index(name) for name in FERPLUS_EMOTIONS.values()])
SOURCE = "https://github.com/microsoft/FERPlus"


def relabel_ferplus(data: FERData, path: str | os.PathLike, source: str | os.PathLike = "FER2013") -> FERData:
    """The faces of ``data`` that have a FER+ majority label, with that label (8 classes).

    ``data`` must be the full FER2013 in the CSV's row order; ``source`` names it in error messages.
    """
    has_name, votes = _read(Path(path), data, source)
    labels = majority_labels(votes)
    keep = (labels >= 0) & has_name
    return FERData(data.images[keep], labels[keep], data.usage[keep], FERPLUS_CLASS_NAMES)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus's "majority" label of each row of N x 10 vote counts, or -1 where the face is dropped."""
    kept = np.where(votes > 1, votes, 0)  # a single vote is an outlier
    winner = kept.argmax(axis=1)
    clear = 2 * kept.max(axis=1) > kept.sum(axis=1)
    emotion = winner < len(LABEL_OF_COLUMN)  # not unknown, not NF
    return np.where(clear & emotion, LABEL_OF_COLUMN[np.minimum(winner, len(LABEL_OF_COLUMN) - 1)], -1)


def _read(path: Path, data: FERData, source: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(has an image name, N x 10 votes) of ``path``, checked to match ``data`` row by row."""
    if not path.is_file():
        raise DataError(f"FER+ labels not found: {path} (get {FERPLUS_NAME} from {SOURCE})")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(f"{path} is empty (expected the FER+ header {','.join(HEADER)})")
    if rows[0] != HEADER:
        raise DataError(f"{path}, line 1: header is {','.join(rows[0])[:60]!r}, expected {','.join(HEADER)!r}")
    rows = rows[1:]
    if len(rows) != len(data):
        raise DataError(f"{path} has {len(rows)} rows but {source} has {len(data)}: FER+ must match it row for row")
    votes = np.empty((len(rows), len(HEADER) - 2), np.int64)
    has_name = np.empty(len(rows), bool)
    for row, fields in enumerate(rows):
        where = f"{path}, line {row + 2}"
        if len(fields) != len(HEADER):
            raise DataError(f"{where}: expected {len(HEADER)} fields, found {len(fields)}")
        if fields[0] != USAGES[data.usage[row]]:
            usage = USAGES[data.usage[row]]
            raise DataError(f"{where}: Usage {fields[0]!r} but row {row + 1} of {source} is {usage}: not the same rows")
        if not all(vote.isdigit() for vote in fields[VOTES]):
            raise DataError(f"{where}: vote counts must be non-negative integers, got {','.join(fields[VOTES])!r}")
        votes[row] = [int(vote) for vote in fields[VOTES]]
        has_name[row] = bool(fields[1].strip())
    return has_name, votes
