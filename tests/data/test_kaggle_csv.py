"""kaggle_csv: Kaggle's fer2013.csv (plain or gzip) written and read back, and every bad row named
by file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferlight.data import FERPLUS_CLASS_NAMES, USAGES, FERData, load_fer2013, write_fer2013_csv, write_image_folders
from ferlight.data import kaggle_csv
from ferlight.data.kaggle_csv import read_fer2013_csv
from ferlight.errors import DataError

# --- reading and writing ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_csv_round_trip(tmp_path, data, assert_same, name):
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
def test_csv_parses_the_same_in_any_block_size(monkeypatch, csv_path, data, assert_same, block_bytes):
    monkeypatch.setattr(kaggle_csv, "BLOCK_BYTES", block_bytes)
    assert_same(read_fer2013_csv(csv_path), data)


def test_csv_with_windows_line_ends_and_no_final_newline(tmp_path, csv_path, data, assert_same):
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(csv_path.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n"))
    assert_same(read_fer2013_csv(crlf), data)


def test_writers_refuse_ferplus_labels_and_a_used_folder(tmp_path, data):
    ferplus = FERData(data.images, data.labels, data.usage, FERPLUS_CLASS_NAMES)
    with pytest.raises(DataError, match="7 FER2013 classes"):
        write_fer2013_csv(ferplus, tmp_path / "x.csv")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(DataError, match="used already exists"):
        write_image_folders(data, tmp_path / "used")


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


def test_vectorised_checks_agree_with_the_row_rules(tmp_path, make_data):
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
