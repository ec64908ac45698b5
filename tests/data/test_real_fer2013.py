"""The real FER2013 in ../shared/data, when present: its splits under each protocol match the
published class counts, and the compact copy holds the same faces. Parsing the 35,887-row CSV takes
seconds, so these run in the slow tier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferlight.data import FERData, load_fer2013, split_protocol

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
REAL_CSV = SHARED / "fer2013.csv.gz"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REAL_CSV.is_file(), reason=f"{REAL_CSV} not present")]

README_COUNTS = {  # ../shared/data/README.md, angry .. neutral
    "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "PublicTest": [467, 56, 496, 895, 653, 415, 607],
    "PrivateTest": [491, 55, 528, 879, 594, 416, 626],
}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> FERData:
    return load_fer2013(REAL_CSV, cache_dir=tmp_path_factory.mktemp("cache"))


def _counts(data: FERData, rows: np.ndarray) -> list[int]:
    return np.bincount(data.labels[rows], minlength=len(data.class_names)).tolist()


def test_real_standard_protocol(real):
    assert len(real) == 35887
    splits = split_protocol(real, "standard")
    assert [len(splits[s]) for s in ("train", "val", "test")] == [28709, 3589, 3589]
    assert [_counts(real, splits[s]) for s in ("train", "val", "test")] == list(README_COUNTS.values())


def test_real_paper_protocol(real):
    splits = split_protocol(real, "paper", seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [25838, 2871, 7178]
    # each class's share of validation is its 10 %, rounded (ties broken by the seed)
    val = _counts(real, splits["val"])
    assert val == [399, 44, 410, 722, 483, 317, 496]
    assert all(abs(v - 0.1 * t) <= 0.5 for v, t in zip(val, README_COUNTS["Training"]))
    assert _counts(real, splits["train"]) == [t - v for t, v in zip(README_COUNTS["Training"], val)]
    public, private = README_COUNTS["PublicTest"], README_COUNTS["PrivateTest"]
    assert _counts(real, splits["test"]) == [a + b for a, b in zip(public, private)]


@pytest.mark.skipif(not (SHARED / "fer2013new.csv").is_file(), reason="fer2013new.csv not present")
def test_real_ferplus_counts(real):
    from ferlight.data.ferplus import relabel_ferplus

    ferplus = relabel_ferplus(real, SHARED / "fer2013new.csv", REAL_CSV)
    splits = split_protocol(ferplus, "standard")
    assert [_counts(ferplus, splits[s]) for s in ("train", "val", "test")] == [
        [2100, 119, 532, 7287, 3014, 3149, 8740, 119],
        [287, 24, 62, 865, 351, 415, 1182, 13],
        [273, 18, 83, 893, 384, 396, 1090, 16],
    ]
    assert [len(split_protocol(ferplus, "paper")[s]) for s in ("train", "val", "test")] == [22554, 2506, 6352]


def test_real_compact_copy_equals_the_csv(real, tmp_path, assert_same):
    compact = load_fer2013(SHARED / "fer2013_images.u8.xz", cache_dir=tmp_path)
    assert_same(compact, real)
