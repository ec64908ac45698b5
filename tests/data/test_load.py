"""load: where FER2013 is looked for, what a missing file says, and the label-set choice."""

from __future__ import annotations

import pytest

from ferlight.data import load_fer2013, write_fer2013_csv
from ferlight.errors import ConfigError, DataError


def test_missing_file_says_where_fer2013_comes_from(tmp_path, monkeypatch):
    kaggle = "kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    with pytest.raises(DataError, match=rf"FER2013 not found \(looked at .*nope.csv\).*{kaggle}"):
        load_fer2013(tmp_path / "nope.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FERLIGHT_DATA", str(tmp_path / "elsewhere.csv"))
    with pytest.raises(DataError) as err:
        load_fer2013()
    for tried in ["elsewhere.csv", "data/fer2013.csv", "data/fer2013.csv.gz", "data/fer2013_images.u8.xz"]:
        assert tried in str(err.value)


def test_default_location_is_found(tmp_path, monkeypatch, data, assert_same):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FERLIGHT_DATA", raising=False)
    (tmp_path / "data").mkdir()
    write_fer2013_csv(data, tmp_path / "data" / "fer2013.csv.gz")
    assert_same(load_fer2013(cache_dir=tmp_path / "cache"), data)


def test_unknown_label_set(csv_path):
    with pytest.raises(ConfigError, match="unknown labels 'fer'"):
        load_fer2013(csv_path, labels="fer")
