"""The data layer: readers and writers, bad input, the cache, the protocols, augmentation, the DataModule."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from ferlight.data import (
    CLASS_NAMES,
    FERPLUS_CLASS_NAMES,
    USAGES,
    BatchAugment,
    FER2013DataModule,
    FERData,
    load_fer2013,
    split_protocol,
    write_fer2013_csv,
    write_image_folders,
)
from ferlight.data import cache as cache_module
from ferlight.data import kaggle_csv
from ferlight.data import load as load_module
from ferlight.data.ferplus import HEADER as FERPLUS_HEADER
from ferlight.data.ferplus import majority_labels
from ferlight.data.image_folders import read_image_folders
from ferlight.data.kaggle_csv import read_fer2013_csv
from ferlight.data.preprocess import center_crop, eval_transform, normalize
from ferlight.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def make_data(per_class: dict[str, int] | None = None, seed: int = 0) -> FERData:
    """Random faces, ``per_class[usage]`` of each class in each Usage, rows in shuffled order."""
    per_class = per_class or {"Training": 4, "PublicTest": 2, "PrivateTest": 2}
    labels = [label for usage, n in per_class.items() for label in range(len(CLASS_NAMES)) for _ in range(n)]
    usage = [USAGES.index(u) for u, n in per_class.items() for _ in range(len(CLASS_NAMES)) for _ in range(n)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    images[0, 0, :3] = [0, 255, 7]  # the extremes and a one-digit value
    return FERData(images, np.array(labels, np.int64)[order], np.array(usage, np.int8)[order])


def assert_same(a: FERData, b: FERData) -> None:
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.usage, b.usage)
    assert a.class_names == b.class_names


def _write_face(path: Path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


@pytest.fixture
def data() -> FERData:
    return make_data()


@pytest.fixture
def csv_path(tmp_path, data) -> Path:
    path = tmp_path / "fer2013.csv"
    write_fer2013_csv(data, path)
    return path


# --- readers and writers -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_csv_round_trip(tmp_path, data, name):
    path = tmp_path / name
    write_fer2013_csv(data, path)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert_same(read_fer2013_csv(path), data)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_csv_is_the_kaggle_layout(csv_path, data):
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "emotion,pixels,Usage"
    emotion, pixels, usage = lines[1].split(",")
    assert int(emotion) == data.labels[0] and usage == USAGES[data.usage[0]]
    assert pixels.split(" ")[:3] == ["0", "255", "7"] and len(pixels.split(" ")) == 2304


@pytest.mark.parametrize("block_bytes", [3_000, 20_000, 1 << 22])
def test_csv_parses_the_same_in_any_block_size(monkeypatch, csv_path, data, block_bytes):
    monkeypatch.setattr(kaggle_csv, "BLOCK_BYTES", block_bytes)
    assert_same(read_fer2013_csv(csv_path), data)


def test_csv_with_windows_line_ends_and_no_final_newline(tmp_path, csv_path, data):
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(csv_path.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n"))
    assert_same(read_fer2013_csv(crlf), data)


def test_folders_round_trip_to_the_same_csv(tmp_path, csv_path, data):
    write_image_folders(data, tmp_path / "faces")
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["test", "train"]
    assert sorted(p.name for p in (tmp_path / "faces" / "train").iterdir()) == sorted(CLASS_NAMES)
    from_folders = read_image_folders(tmp_path / "faces")
    assert_same(from_folders, data)
    write_fer2013_csv(from_folders, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == csv_path.read_bytes()


def test_folders_take_the_split_from_names_then_folders(tmp_path):
    face = np.full((48, 48), 128, np.uint8)
    layout = {
        "train/happy/Training_10118481.png": ("happy", "Training"),
        "test/angry/PublicTest_88.png": ("angry", "PublicTest"),
        "test/Sad/PrivateTest_5.jpg": ("sad", "PrivateTest"),
        "test/fear/im3.png": ("fear", "PrivateTest"),
        "val/neutral/im4.png": ("neutral", "PublicTest"),
    }
    for name in layout:
        _write_face(tmp_path / "faces" / name, cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))  # colour is made grey
    (tmp_path / "faces" / "train" / ".DS_Store").write_text("hidden files are ignored")
    data = load_fer2013(tmp_path / "faces", cache_dir=tmp_path / "cache")
    by_number = ["im3", "im4", "PrivateTest_5", "PublicTest_88", "Training_10118481"]
    expected = [next(v for k, v in layout.items() if Path(k).stem == stem) for stem in by_number]
    assert [(CLASS_NAMES[label], USAGES[usage]) for label, usage in zip(data.labels, data.usage)] == expected
    assert np.all(np.abs(data.images.astype(int) - 128) <= 1)


def test_writers_refuse_ferplus_labels_and_a_used_folder(tmp_path, data):
    ferplus = FERData(data.images, data.labels, data.usage, FERPLUS_CLASS_NAMES)
    with pytest.raises(DataError, match="7 FER2013 classes"):
        write_fer2013_csv(ferplus, tmp_path / "x.csv")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(DataError, match="used already exists"):
        write_image_folders(data, tmp_path / "used")


def test_compact_layout(tmp_path, data):
    import lzma

    with lzma.open(tmp_path / "fer2013_images.u8.xz", "wb") as f:
        f.write(data.images.tobytes())
    rows = [f"{label},{USAGES[usage]}" for label, usage in zip(data.labels, data.usage)]
    (tmp_path / "fer2013_labels.csv").write_text("emotion,Usage\n" + "\n".join(rows) + "\n")
    assert_same(load_fer2013(tmp_path / "fer2013_images.u8.xz", cache_dir=tmp_path / "cache"), data)


def test_atomic_output_leaves_nothing_half_written(tmp_path):
    from ferlight.atomic import atomic_output

    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "out.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "faces") as tmp:
            (tmp / "train").mkdir(parents=True)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(tmp_path / "out.csv") as tmp:
        tmp.write_text("whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"] and (tmp_path / "out.csv").read_text() == "whole"


# --- bad input -------------------------------------------------------------------------------------


def _corrupt(path: Path, row: int, edit) -> None:
    """Apply ``edit`` to the fields [emotion, pixel list, usage] of data row ``row`` (file line row + 2)."""
    lines = path.read_text().split("\n")
    emotion, pixels, usage = lines[row + 1].split(",")
    fields = edit([emotion, pixels.split(" "), usage])
    lines[row + 1] = f"{fields[0]},{' '.join(fields[1])},{fields[2]}" if isinstance(fields, list) else fields
    path.write_text("\n".join(lines))


def _set_pixel(value):
    def edit(fields):
        fields[1][6] = value
        return fields

    return edit


CSV_DEFECTS = {
    "too few pixels": (lambda f: [f[0], f[1][:-1], f[2]], "expected 2304 pixels, found 2303"),
    "too many pixels": (lambda f: [f[0], f[1] + ["1"], f[2]], "expected 2304 pixels, found 2305"),
    "decimal pixel": (_set_pixel("12.5"), "pixel 7 is '12.5', not an integer in 0..255"),
    "word pixel": (_set_pixel("abc"), "pixel 7 is 'abc'"),
    "letter inside a pixel": (_set_pixel("1a2"), "pixel 7 is '1a2'"),
    "pixel 256": (_set_pixel("256"), "pixel 7 is '256'"),
    "negative pixel": (_set_pixel("-1"), "pixel 7 is '-1'"),
    "four-digit pixel": (_set_pixel("0012"), "pixel 7 is '0012'"),
    "double space": (_set_pixel(""), "pixel 7 is ''"),
    "label 7": (lambda f: ["7", f[1], f[2]], "emotion '7' is not a class number 0..6"),
    "label -1": (lambda f: ["-1", f[1], f[2]], "emotion '-1'"),
    "label 10": (lambda f: ["10", f[1], f[2]], "emotion '10'"),
    "unknown usage": (lambda f: [f[0], f[1], "Validation"], "unknown Usage 'Validation'"),
    "usage in lower case": (lambda f: [f[0], f[1], "training"], "unknown Usage 'training'"),
    "extra field": (lambda f: f"{f[0]},{' '.join(f[1])},{f[2]},x", "expected 3 comma-separated fields"),
    "empty line": (lambda f: "", "expected 3 comma-separated fields (emotion,pixels,Usage), found 1"),
}


@pytest.mark.parametrize("defect", CSV_DEFECTS)
@pytest.mark.parametrize("row", [0, 40])
def test_malformed_row_names_file_and_line(tmp_path, csv_path, monkeypatch, defect, row):
    monkeypatch.setattr(kaggle_csv, "BLOCK_BYTES", 50_000)  # several blocks: the line count must carry over
    edit, message = CSV_DEFECTS[defect]
    _corrupt(csv_path, row, edit)
    with pytest.raises(DataError) as err:
        read_fer2013_csv(csv_path)
    assert f"{csv_path}, line {row + 2}: " in str(err.value)
    assert message in str(err.value)


def _reference_read(body: bytes):
    """The row rules applied line by line in plain Python: ("error", line, problem) or the parsed columns."""
    lines = body[:-1].split(b"\n") if body.endswith(b"\n") else body.split(b"\n")
    for number, line in enumerate(lines, start=2):
        problem = kaggle_csv._row_problem(line)
        if problem:
            return ("error", number, problem)
    fields = [line.split(b",") for line in lines]
    return (
        [int(f[0]) for f in fields],
        [[int(v) for v in f[1].split(b" ")] for f in fields],
        [USAGES.index(f[2].decode()) for f in fields],
    )


def test_vectorised_checks_agree_with_the_row_rules(tmp_path):
    """Random one-byte edits: the fast reader accepts exactly what the row rules accept, with the same values."""
    rng = np.random.default_rng(0)
    path = tmp_path / "fer2013.csv"
    write_fer2013_csv(make_data({"Training": 1, "PublicTest": 0, "PrivateTest": 0}).subset(np.arange(3)), path)
    header, body = path.read_bytes().split(b"\n", 1)
    alphabet = b"0123456789 ,\n-.aT"
    field_ends = np.flatnonzero(np.isin(np.frombuffer(body, np.uint8), list(b",\n")))
    for _ in range(300):
        near_a_field_end = int(rng.choice(field_ends)) + int(rng.integers(-3, 4))
        at = int(np.clip(near_a_field_end if rng.random() < 0.4 else rng.integers(len(body)), 0, len(body) - 1))
        new = bytes([alphabet[rng.integers(len(alphabet))]])
        edited = body[:at] + (b"" if rng.random() < 0.2 else new) + body[at + (rng.random() < 0.8) :]
        path.write_bytes(header + b"\n" + edited)
        expected = _reference_read(edited)
        if expected[0] == "error":
            with pytest.raises(DataError) as err:
                read_fer2013_csv(path)
            assert str(err.value) == f"{path}, line {expected[1]}: {expected[2]}"
        else:
            got = read_fer2013_csv(path)
            assert got.labels.tolist() == expected[0]
            assert got.images.reshape(len(got), -1).tolist() == expected[1]
            assert got.usage.tolist() == expected[2]


def test_the_first_of_two_bad_rows_is_reported(csv_path):
    _corrupt(csv_path, 30, _set_pixel("x"))
    _corrupt(csv_path, 3, lambda f: ["9", f[1], f[2]])
    with pytest.raises(DataError, match=r"line 5: emotion '9'"):
        read_fer2013_csv(csv_path)


def test_wrong_header(tmp_path, csv_path):
    csv_path.write_text(csv_path.read_text().replace("emotion,pixels,Usage", "label,pixels,usage", 1))
    message = "fer2013.csv, line 1: header is 'label,pixels,usage', expected 'emotion,pixels,Usage'"
    with pytest.raises(DataError, match=message):
        read_fer2013_csv(csv_path)


@pytest.mark.parametrize(
    "content, message", [(b"", "is empty"), (b"emotion,pixels,Usage\n", "has a header but no rows")]
)
def test_empty_csv(tmp_path, content, message):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"fer2013.csv {message}"):
        load_fer2013(path, cache_dir=tmp_path / "cache")


def test_truncated_gzip(tmp_path, data):
    path = tmp_path / "fer2013.csv.gz"
    write_fer2013_csv(data, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"fer2013.csv.gz: gzip data is truncated or corrupt after line \d+"):
        load_fer2013(path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing cached


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


def test_default_location_is_found(tmp_path, monkeypatch, data):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FERLIGHT_DATA", raising=False)
    (tmp_path / "data").mkdir()
    write_fer2013_csv(data, tmp_path / "data" / "fer2013.csv.gz")
    assert_same(load_fer2013(cache_dir=tmp_path / "cache"), data)


@pytest.mark.parametrize(
    "name, content, named, message",
    [
        ("train/angry/Training_1.png", np.zeros((64, 64), np.uint8), "train/angry/Training_1.png", "image is 64x64"),
        ("train/angry/Training_1.png", b"not a picture", "train/angry/Training_1.png", "not an image"),
        ("train/contempt/Training_1.png", np.zeros((48, 48), np.uint8), "train/contempt", "not an emotion folder"),
        ("train/notes.txt", b"x", "train/notes.txt", "not an emotion folder"),
        ("holdout/angry/x.png", np.zeros((48, 48), np.uint8), "holdout", "expected split folders"),
    ],
)
def test_bad_image_folders_name_the_image(tmp_path, name, content, named, message):
    _write_face(tmp_path / "faces" / "train" / "happy" / "Training_0.png", np.zeros((48, 48), np.uint8))
    path = tmp_path / "faces" / name
    if isinstance(content, bytes):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    else:
        _write_face(path, content)
    with pytest.raises(DataError, match=message) as err:
        load_fer2013(tmp_path / "faces", cache_dir=tmp_path / "cache")
    assert str(err.value).startswith(f"{tmp_path / 'faces' / named}: ")


def test_empty_folder(tmp_path):
    (tmp_path / "faces").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_fer2013(tmp_path / "faces", cache_dir=tmp_path / "cache")


def test_unknown_label_set(csv_path):
    with pytest.raises(ConfigError, match="unknown labels 'fer'"):
        load_fer2013(csv_path, labels="fer")


# --- FER+ ------------------------------------------------------------------------------------------


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


# --- cache -----------------------------------------------------------------------------------------


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


def test_cache_is_hit_when_warm(tmp_path, csv_path, data, reader):
    cache = tmp_path / "cache"
    assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert reader.calls == 1
    assert [p.suffix for p in cache.iterdir()] == [".npz"]  # no temporary file left behind


def test_cache_dir_from_environment(tmp_path, csv_path, monkeypatch, reader):
    monkeypatch.setenv("FERLIGHT_CACHE", str(tmp_path / "env-cache"))
    load_fer2013(csv_path)
    assert len(list((tmp_path / "env-cache").glob("fer2013.csv.*.npz"))) == 1


def test_cache_misses_when_the_source_changes(tmp_path, csv_path, data, reader):
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
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, csv_path, data, reader, damage):
    cache = tmp_path / "cache"
    load_fer2013(csv_path, cache_dir=cache)
    (cached,) = cache.iterdir()
    damage(cached)
    with pytest.warns(UserWarning, match="cache .* is damaged"):
        assert_same(load_fer2013(csv_path, cache_dir=cache), data)
    assert reader.calls == 2
    assert_same(cache_module.load_cache(cached), data)  # rewritten whole


def test_unwritable_cache_only_warns(tmp_path, csv_path, data):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="cannot write the FER2013 cache"):
        assert_same(load_fer2013(csv_path, cache_dir=blocker / "cache"), data)


# --- protocols -------------------------------------------------------------------------------------


def test_standard_protocol_follows_usage(data):
    splits = split_protocol(data, "standard")
    for split, usage in zip(["train", "val", "test"], USAGES):
        assert np.array_equal(splits[split], np.flatnonzero(data.usage == USAGES.index(usage)))
        assert splits[split].dtype == np.int64


def test_paper_protocol_is_a_stratified_90_10_split():
    data = make_data({"Training": 20, "PublicTest": 3, "PrivateTest": 2})
    splits = split_protocol(data, "paper", seed=0)
    training = np.flatnonzero(data.usage == 0)
    assert len(splits["val"]) == math.ceil(0.1 * len(training)) == 14
    assert np.array_equal(np.sort(np.concatenate([splits["train"], splits["val"]])), training)
    assert not set(splits["train"]) & set(splits["val"])
    assert np.array_equal(np.bincount(data.labels[splits["val"]], minlength=7), np.full(7, 2))
    assert np.array_equal(splits["test"], np.flatnonzero(data.usage > 0))
    again = split_protocol(data, "paper", seed=0)
    other = split_protocol(data, "paper", seed=1)
    assert np.array_equal(again["val"], splits["val"]) and not np.array_equal(other["val"], splits["val"])


def test_protocol_errors(data):
    with pytest.raises(ConfigError, match="unknown protocol 'kaggle'"):
        split_protocol(data, "kaggle")
    no_public = data.subset(data.usage != 1)
    with pytest.raises(DataError, match="protocol 'standard' has an empty val split: the data has .* 0 PublicTest"):
        split_protocol(no_public, "standard")
    tiny = make_data({"Training": 1, "PublicTest": 1, "PrivateTest": 1})
    with pytest.raises(DataError, match="cannot split the 7 Training rows 90/10 by class"):
        split_protocol(tiny, "paper")


# --- augmentation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [40, 44, 48])
def test_batch_augment_shapes_and_policies(crop):
    x = normalize(torch.from_numpy(make_data().images[:16]))
    torch.manual_seed(0)
    strong = BatchAugment("strong", crop)(x)
    assert strong.shape == (16, 1, crop, crop) and strong.dtype == torch.float32
    assert not torch.equal(strong, center_crop(x, crop))
    assert torch.equal(BatchAugment("none", crop)(x), center_crop(x, crop))


def test_resampling_geometry():
    """The affine resampling behind the strong policy crops, flips and shifts exactly."""
    x = normalize(torch.from_numpy(make_data().images[:4]))
    augment = BatchAugment("strong", 40)
    still, no_flip, centred = torch.zeros(4), torch.zeros(4, dtype=torch.bool), torch.zeros(4, 2)
    crop = center_crop(x, 40)
    assert torch.allclose(augment.resample(x, still, no_flip, centred), crop, atol=1e-4)
    assert torch.allclose(augment.resample(x, still, ~no_flip, centred), crop.flip(-1), atol=1e-4)
    right_2_up_3 = torch.tensor([[2.0, -3.0]]).expand(4, 2)
    assert torch.allclose(augment.resample(x, still, no_flip, right_2_up_3), x[..., 1:41, 6:46], atol=1e-4)
    quarter_turn = augment.resample(x, torch.full((4,), 90.0), no_flip, centred)
    assert torch.allclose(quarter_turn, crop.rot90(1, (-2, -1)), atol=1e-4)


def test_random_erasing_zeroes_one_rectangle_in_about_half_the_faces():
    torch.manual_seed(0)
    erased = BatchAugment("strong", 40)._erase(torch.ones(1000, 1, 40, 40))
    zero = erased[:, 0] == 0
    counts = zero.sum((1, 2))
    assert 400 < (counts > 0).sum() < 600
    for mask, count in zip(zero[counts > 0], counts[counts > 0]):
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height * width == count  # a filled rectangle
        assert 0.02 * 1600 * 0.7 <= count <= 0.2 * 1600 * 1.3  # about 2 to 20 % of the face (rounding)


def test_batch_augment_rejects_bad_options():
    with pytest.raises(ConfigError, match="unknown augmentation 'heavy'"):
        BatchAugment("heavy")
    with pytest.raises(ConfigError, match="crop_size must be between 8 and 48"):
        BatchAugment("strong", 50)


# --- DataModule ------------------------------------------------------------------------------------


def _datamodule(path, tmp_path, **options) -> FER2013DataModule:
    return FER2013DataModule(str(path), cache_dir=str(tmp_path / "cache"), **options)


def _trainer(training: bool, device: str = "cpu") -> SimpleNamespace:
    """What the DataModule reads of its Trainer."""
    return SimpleNamespace(training=training, world_size=1, strategy=SimpleNamespace(root_device=torch.device(device)))


def test_datamodule_batches(tmp_path, csv_path, data):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=10, augment="strong", crop_size=44)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (10, 48, 48)
    assert labels.dtype == torch.int64 and labels.shape == (10,)
    dm.trainer = _trainer(training=True)
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.shape == (10, 1, 44, 44) and x.dtype == torch.float32 and y is labels
    assert not torch.allclose(x, eval_transform(images, 44))  # training batches are augmented ...
    dm.trainer = _trainer(training=False)
    val_images, val_labels = next(iter(dm.val_dataloader()))
    x, _ = dm.on_after_batch_transfer((val_images, val_labels), 0)
    assert torch.equal(x, normalize(val_images))  # ... evaluation batches are only normalised


def test_datamodule_order_and_class_statistics(tmp_path, csv_path, data):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8)
    val_images, val_labels = dm.split_arrays("val")  # sets up on demand
    public = data.usage == 1
    assert np.array_equal(val_images, data.images[public]) and np.array_equal(val_labels, data.labels[public])
    assert torch.equal(torch.cat([y for _, y in dm.val_dataloader()]), torch.from_numpy(val_labels))  # in order
    torch.manual_seed(0)
    epochs = [torch.cat([y for _, y in dm.train_dataloader()]) for _ in range(2)]
    train_labels = torch.from_numpy(dm.split_arrays("train")[1])
    assert all(torch.equal(e.sort().values, train_labels.sort().values) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0], train_labels)  # shuffled
    assert np.array_equal(dm.class_counts(), np.full(7, 4))
    two_angry_faces_fewer = np.delete(np.arange(len(data)), np.flatnonzero((data.usage == 0) & (data.labels == 0))[:2])
    write_fer2013_csv(data.subset(two_angry_faces_fewer), tmp_path / "unbalanced.csv")
    dm = _datamodule(tmp_path / "unbalanced.csv", tmp_path, protocol="standard")
    assert dm.class_counts().tolist() == [2, 4, 4, 4, 4, 4, 4]
    weights = dm.class_weights()
    assert weights.dtype == torch.float32
    assert torch.allclose(weights, torch.tensor([7 / 4, 7 / 8, 7 / 8, 7 / 8, 7 / 8, 7 / 8, 7 / 8]))  # 1/count, mean 1


def test_faces_live_on_the_training_device_unless_workers_load_them(tmp_path, csv_path):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8)
    dm.trainer = _trainer(training=True, device="meta")  # stands in for a GPU: tensors that are not on the host
    images, labels = next(iter(dm.train_dataloader()))
    assert images.device.type == labels.device.type == "meta" and images.shape == (8, 48, 48)
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8, num_workers=1)
    dm.trainer = _trainer(training=True, device="meta")
    assert dm.train_dataloader().dataset.images.device.type == "cpu"


def test_datamodule_drops_a_last_batch_of_one(tmp_path, csv_path):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=9)  # 28 training faces = 3 x 9 + 1
    assert [len(y) for _, y in dm.train_dataloader()] == [9, 9, 9]
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=10)
    assert sorted(len(y) for _, y in dm.train_dataloader()) == [8, 10, 10]


def test_datamodule_options(tmp_path, csv_path):
    assert _datamodule(csv_path, tmp_path, labels="ferplus").num_classes == 8
    assert _datamodule(csv_path, tmp_path).class_names == CLASS_NAMES
    for options, message in [
        ({"protocol": "x"}, "unknown protocol"),
        ({"labels": "x"}, "unknown labels"),
        ({"augment": "x"}, "unknown augmentation"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _datamodule(csv_path, tmp_path, **options)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        _datamodule(csv_path, tmp_path).split_arrays("dev")


def _indexed_data() -> FERData:
    """40 Training faces whose every pixel is their row number (so a batch tells which rows it holds),
    then one PublicTest and one PrivateTest face."""
    images = np.repeat(np.arange(42, dtype=np.uint8), 48 * 48).reshape(42, 48, 48)
    usage = np.array([0] * 40 + [1, 2], np.int8)
    return FERData(images, (np.arange(42) % 7).astype(np.int64), usage)


def test_lightning_swaps_in_a_distributed_sampler_that_shards(tmp_path):
    from lightning.pytorch.utilities.data import _update_dataloader

    write_fer2013_csv(_indexed_data(), tmp_path / "indexed.csv")
    loader = _datamodule(tmp_path / "indexed.csv", tmp_path, protocol="standard", batch_size=6).train_dataloader()
    seen = []
    for rank in range(2):  # what Lightning does on each rank under DDP
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sharded = _update_dataloader(loader, sampler)
        assert sharded.collate_fn is loader.collate_fn and sharded.batch_size == 6
        seen.append([int(images[i, 0, 0]) for images, _ in sharded for i in range(len(images))])
    assert len(seen[0]) == len(seen[1]) == 20
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(40))


@pytest.mark.slow
def test_ddp_ranks_see_disjoint_shards(tmp_path):
    """A real 2-process gloo run: each rank writes the rows it trained on."""
    import subprocess
    import sys

    write_fer2013_csv(_indexed_data(), tmp_path / "indexed.csv")
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [set(map(int, (tmp_path / f"rank{r}.txt").read_text().split())) for r in range(2)]
    assert len(seen[0]) == len(seen[1]) == 20
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(40))


DDP_SCRIPT = """
import sys
from pathlib import Path
import lightning as L
import torch
from ferlight.data import FER2013DataModule
from ferlight.data.preprocess import MEAN, STD

out = Path(sys.argv[1])

class Record(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.rows = []
    def training_step(self, batch, _):
        x, _ = batch
        self.rows += ((x[:, 0, 0, 0] * STD + MEAN) * 255).round().int().tolist()
        return (self.w * x.mean()).sum()
    def on_train_end(self):
        (out / f"rank{self.global_rank}.txt").write_text(" ".join(map(str, self.rows)))
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

if __name__ == "__main__":
    dm = FER2013DataModule(str(out / "indexed.csv"), protocol="standard", batch_size=5, cache_dir=str(out / "cache"))
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Record(), datamodule=dm)
    torch.distributed.destroy_process_group()  # gloo threads alive at exit can abort the process
"""


# --- the real FER2013, when present ----------------------------------------------------------------

REAL_CSV = SHARED / "fer2013.csv.gz"
needs_real = pytest.mark.skipif(not REAL_CSV.is_file(), reason=f"{REAL_CSV} not present")

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


@needs_real
def test_real_standard_protocol(real):
    assert len(real) == 35887
    splits = split_protocol(real, "standard")
    assert [len(splits[s]) for s in ("train", "val", "test")] == [28709, 3589, 3589]
    assert [_counts(real, splits[s]) for s in ("train", "val", "test")] == list(README_COUNTS.values())


@needs_real
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


@needs_real
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


@needs_real
@pytest.mark.slow
def test_real_compact_copy_equals_the_csv(real, tmp_path):
    compact = load_fer2013(SHARED / "fer2013_images.u8.xz", cache_dir=tmp_path)
    assert_same(compact, real)
