"""image_folders: FER2013 as per-class image folders, written and read back in row order, the split
taken from names or folders, and bad folders named."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlight.data import CLASS_NAMES, USAGES, load_fer2013, write_fer2013_csv, write_image_folders
from ferlight.data.image_folders import read_image_folders
from ferlight.errors import DataError


def _write_face(path: Path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def test_folders_round_trip_to_the_same_csv(tmp_path, csv_path, data, assert_same):
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
