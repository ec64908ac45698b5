"""ferplus: FER+ majority labels from fer2013new.csv, joined row by row with FER2013."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferlight.data import FERPLUS_CLASS_NAMES, USAGES, FERData, load_fer2013, write_image_folders
from ferlight.data.ferplus import HEADER as FERPLUS_HEADER
from ferlight.data.ferplus import majority_labels
from ferlight.errors import DataError


def _write_ferplus(path: Path, data: FERData, votes: np.ndarray, names=None) -> Path:
    lines = [",".join(FERPLUS_HEADER)]
    for row, usage in enumerate(data.usage):
        name = f"fer{row:07d}.png" if names is None else names[row]
        lines.append(f"{USAGES[usage]},{name}," + ",".join(map(str, votes[row])))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ferplus_majority_rule():
    # columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
    votes = np.array(
        [
            [6, 0, 0, 0, 4, 0, 0, 0, 0, 0],  # neutral 6/10
            [5, 0, 0, 0, 5, 0, 0, 0, 0, 0],  # a tie: no majority
            [0, 0, 0, 0, 0, 0, 4, 1, 1, 1],  # single votes dropped: fear 4/4
            [0, 0, 0, 0, 0, 0, 0, 6, 4, 0],  # contempt 6/10
            [2, 0, 0, 0, 0, 0, 0, 0, 8, 0],  # unknown wins: dropped
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # every vote an outlier: dropped
            [0, 3, 3, 0, 0, 0, 0, 0, 2, 2],  # happiness 3/10: dropped
        ]
    )
    expected = ["neutral", None, "fear", "contempt", None, None, None, None]
    assert [FERPLUS_CLASS_NAMES[k] if k >= 0 else None for k in majority_labels(votes)] == expected


def test_ferplus_relabels_and_drops(tmp_path, csv_path, data):
    votes = np.zeros((len(data), 10), np.int64)
    votes[:, 7] = 10  # contempt everywhere ...
    votes[0, 7:9] = [0, 10]  # ... except an unknown face
    names = [f"fer{row:07d}.png" for row in range(len(data))]
    names[1] = ""  # ... and a row that is not a face
    _write_ferplus(tmp_path / "fer2013new.csv", data, votes, names)
    ferplus = load_fer2013(csv_path, labels="ferplus", cache_dir=tmp_path / "cache")
    assert ferplus.class_names == FERPLUS_CLASS_NAMES
    assert np.all(ferplus.labels == FERPLUS_CLASS_NAMES.index("contempt"))
    assert np.array_equal(ferplus.images, data.images[2:]) and np.array_equal(ferplus.usage, data.usage[2:])


def test_ferplus_rows_must_match(tmp_path, csv_path, data):
    votes = np.full((len(data), 10), 1)
    ferplus = _write_ferplus(tmp_path / "fer2013new.csv", data.subset(np.arange(len(data) - 1)), votes)
    with pytest.raises(DataError, match=f"fer2013new.csv has {len(data) - 1} rows but .*fer2013.csv has {len(data)}"):
        load_fer2013(csv_path, labels="ferplus", cache_dir=tmp_path / "cache")
    other_usage = FERData(data.images, data.labels, ((data.usage + 1) % 3).astype(np.int8))
    _write_ferplus(ferplus, other_usage, votes)
    with pytest.raises(DataError, match=r"fer2013new.csv, line 2: Usage '.*' but row 1 of .*fer2013.csv is"):
        load_fer2013(csv_path, labels="ferplus", cache_dir=tmp_path / "cache")
    _write_ferplus(ferplus, data, votes)
    lines = ferplus.read_text().split("\n")
    lines[3] = lines[3][:-1] + "x"
    ferplus.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"fer2013new.csv, line 4: vote counts must be non-negative integers"):
        load_fer2013(csv_path, labels="ferplus", cache_dir=tmp_path / "cache")


def test_ferplus_missing_or_with_folders(tmp_path, csv_path, data):
    with pytest.raises(DataError, match=r"FER\+ labels not found: .*fer2013new.csv .*microsoft/FERPlus"):
        load_fer2013(csv_path, labels="ferplus", cache_dir=tmp_path / "cache")
    write_image_folders(data, tmp_path / "faces")
    with pytest.raises(DataError, match="image folders do not keep the CSV's row order"):
        load_fer2013(tmp_path / "faces", labels="ferplus", cache_dir=tmp_path / "cache")
