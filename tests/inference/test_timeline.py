"""Timelines: each track's probabilities over a video, a CSV row per frame it was seen in and a plot."""

import csv

import cv2
import numpy as np
import pytest

from ferlight.errors import DataError
from ferlight.inference.recognizer import Face, FrameResult
from ferlight.inference.timeline import Timeline

CLASSES = ("sad", "happy")
IMAGE = np.zeros((4, 4), np.uint8)


def face(track_id, happy):
    return Face((0, 0, 2, 2), {"sad": 1 - happy, "happy": happy}, "happy" if happy > 0.5 else "sad", track_id)


def results(timestamps):
    """Track 1 in frames 0-1 and 3 (not 2), track 2 in frame 1 alone."""
    faces = [[face(1, 0.9)], [face(2, 0.3), face(1, 0.7)], [], [face(1, 0.4)]]
    return [FrameResult(i, t, IMAGE, f) for i, (t, f) in enumerate(zip(timestamps, faces))]


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.reader(file))


def test_each_track_gets_a_csv_row_per_frame_it_was_seen_in_and_a_plot(tmp_path):
    timeline = Timeline(tmp_path / "out", CLASSES)
    for result in results([0.0, 0.04, 0.08, 0.12]):
        timeline.add(result)
    written = timeline.write()
    names = ["track-1.csv", "track-1.png", "track-2.csv", "track-2.png"]
    assert [p.name for p in written] == names and sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert read_csv(tmp_path / "out" / "track-1.csv") == [
        ["frame", "seconds", "sad", "happy", "label"],
        ["0", "0.0", "0.1", "0.9", "happy"],
        ["1", "0.04", "0.3", "0.7", "happy"],
        ["3", "0.12", "0.6", "0.4", "sad"],
    ]
    assert read_csv(tmp_path / "out" / "track-2.csv")[1:] == [["1", "0.04", "0.7", "0.3", "sad"]]
    for name in ("track-1.png", "track-2.png"):
        image = cv2.imread(str(tmp_path / "out" / name))
        assert image is not None and image.shape[1] > 400  # a real PNG, drawn


def test_without_timestamps_the_seconds_are_blank(tmp_path):
    timeline = Timeline(tmp_path, CLASSES)  # an existing folder is fine
    for result in results([None] * 4):
        timeline.add(result)
    timeline.write()
    assert [row[:2] for row in read_csv(tmp_path / "track-1.csv")[1:]] == [["0", ""], ["1", ""], ["3", ""]]
    assert (tmp_path / "track-1.png").stat().st_size > 0


@pytest.mark.parametrize("make, message", [(lambda t: t / "missing" / "out", "does not exist"), (lambda t: t / "file.txt", "it is a file")])
def test_a_folder_that_cannot_be_made_is_refused_before_any_frame(tmp_path, make, message):
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(DataError, match=message):
        Timeline(make(tmp_path), CLASSES)
