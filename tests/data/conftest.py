"""Fixtures the data tests share: random FER2013-shaped data, its Kaggle CSV, and an exact comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferlight.data import CLASS_NAMES, USAGES, FERData, write_fer2013_csv


def random_fer_data(per_class: dict[str, int] | None = None, seed: int = 0) -> FERData:
    """Random faces, ``per_class[usage]`` of each class in each Usage, rows in shuffled order."""
    per_class = per_class or {"Training": 4, "PublicTest": 2, "PrivateTest": 2}
    labels = [label for usage, n in per_class.items() for label in range(len(CLASS_NAMES)) for _ in range(n)]
    usage = [USAGES.index(u) for u, n in per_class.items() for _ in range(len(CLASS_NAMES)) for _ in range(n)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    images[0, 0, :3] = [0, 255, 7]  # the extremes and a one-digit value
    return FERData(images, np.array(labels, np.int64)[order], np.array(usage, np.int8)[order])


def assert_same_data(a: FERData, b: FERData) -> None:
    """Every array and the class names equal."""
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.usage, b.usage)
    assert a.class_names == b.class_names


@pytest.fixture
def make_data():
    """``make_data(per_class=None, seed=0)``: random FER2013-shaped data (4/2/2 faces of each class
    in Training/PublicTest/PrivateTest by default)."""
    return random_fer_data


@pytest.fixture
def assert_same():
    """``assert_same(a, b)``: two FERData hold the same faces, labels, Usage and class names."""
    return assert_same_data


@pytest.fixture
def data() -> FERData:
    return random_fer_data()


@pytest.fixture
def csv_path(tmp_path, data) -> Path:
    """``data`` written as ``fer2013.csv`` in the test's temporary folder."""
    path = tmp_path / "fer2013.csv"
    write_fer2013_csv(data, path)
    return path
