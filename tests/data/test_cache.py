"""cache: parsed arrays are cached per source, missed when the source changes, rebuilt when damaged."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ferlight.data import FERData, load_fer2013, write_fer2013_csv
from ferlight.data import cache as cache_module
from ferlight.data import load as load_module
from ferlight.data.kaggle_csv import read_fer2013_csv


class CountingReader:
    def __init__(self):
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        return read_fer2013_csv(path)


@pytest.fixture
def reader(monkeypatch) -> CountingReader:
    counting = CountingReader()
    monkeypatch.setattr(load_module, "read_fer2013_csv", counting)
    return counting


def test_cache_is_hit_when_warm(tmp_path, csv_path, data, assert_same, reader):
    cache = tmp_path / "cache"
    assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert reader.calls == 1
    assert [p.suffix for p in cache.iterdir()] == [".npz"]  # no temporary file left behind


def test_cache_dir_from_environment(tmp_path, csv_path, monkeypatch, reader):
    monkeypatch.setenv("FERLIGHT_CACHE", str(tmp_path / "env-cache"))
    load_fer2013(csv_path)
    assert len(list((tmp_path / "env-cache").glob("fer2013.csv.*.npz"))) == 1


def test_cache_misses_when_the_source_changes(tmp_path, csv_path, data, assert_same, reader):
    cache = tmp_path / "cache"
    load_fer2013(csv_path, cache_dir=cache)
    changed = FERData(data.images, (data.labels + 1) % 7, data.usage)
    write_fer2013_csv(changed, csv_path)  # same size: only the modification time tells
    stat = csv_path.stat()
    os.utime(csv_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert_same(load_fer2013(csv_path, cache_dir=cache), changed)
    assert reader.calls == 2
    assert len(list(cache.iterdir())) == 1  # the stale entry is gone
    os.utime(csv_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))  # touched, not changed
    load_fer2013(csv_path, cache_dir=cache)
    assert reader.calls == 3


def test_sources_of_the_same_name_keep_their_own_entries(tmp_path, csv_path, data, reader):
    cache = tmp_path / "cache"
    other = tmp_path / "elsewhere" / csv_path.name
    other.parent.mkdir()
    write_fer2013_csv(data.subset(np.arange(10)), other)
    for _ in range(2):
        assert len(load_fer2013(csv_path, cache_dir=cache)) == len(data)
        assert len(load_fer2013(other, cache_dir=cache)) == 10
    assert reader.calls == 2 and len(list(cache.iterdir())) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:1000]),  # truncated
        lambda path: path.write_bytes(b"garbage"),
        lambda path: np.savez(  # inconsistent lengths
            path.open("wb"), images=np.zeros((3, 48, 48), np.uint8), labels=np.zeros(2, np.int64), usage=np.zeros(3, np.int8)
        ),
        lambda path: np.savez(path.open("wb"), images=np.zeros((2, 48, 48), np.uint8)),  # arrays missing
    ],
)
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, csv_path, data, assert_same, reader, damage):
    cache = tmp_path / "cache"
    load_fer2013(csv_path, cache_dir=cache)
    (cached,) = cache.iterdir()
    damage(cached)
    with pytest.warns(UserWarning, match="cache .* is damaged"):
        assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert reader.calls == 2
    assert_same(cache_module.load_cache(cached), data)  # rewritten whole


def test_unwritable_cache_only_warns(tmp_path, csv_path, data, assert_same):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="cannot write the FER2013 cache"):
        assert_same(load_fer2013(csv_path, cache_dir=blocker / "cache"), data)
