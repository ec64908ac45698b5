"""Sources and sinks of live inference: what open_source opens, frames and timestamps, unreadable
images skipped or refused, and outputs written under a temporary name until complete."""

import csv
import json

import cv2
import numpy as np
import pytest

from ferlight.errors import ConfigError, DataError
from ferlight.inference.video import CaptureSource, CsvSink, ImageSource, JsonlSink, VideoSink, open_source
from ferlight.testing.live_clips import write_video


def frames(n, size=(64, 48)):
    width, height = size
    return [np.full((height, width, 3), 20 * i, np.uint8) for i in range(n)]


def test_folder_yields_its_images_by_name(tmp_path):
    for name, frame in zip(("b.png", "a.jpg", "c.bmp"), frames(3)):
        cv2.imwrite(str(tmp_path / name), frame)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path)
    assert isinstance(source, ImageSource)
    read = list(source)
    assert [(f.index, f.name, f.timestamp) for f in read] == [(0, "a.jpg", None), (1, "b.png", None), (2, "c.bmp", None)]
    assert read[0].image.shape == (48, 64, 3)


def test_several_sources_yield_their_images_in_order_named_by_path(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        for name, frame in zip(("b.png", "a.png"), frames(2)):
            cv2.imwrite(str(folder / name), frame)
    (tmp_path / "empty").mkdir()
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), frames(1)[0])
    read = list(open_source([str(photo), two, tmp_path / "empty", one]))
    assert [f.name for f in read] == [str(photo), str(two / "a.png"), str(two / "b.png"), str(one / "a.png"), str(one / "b.png")]
    assert [f.index for f in read] == list(range(5))
    assert open_source([one]).paths == [one / "a.png", one / "b.png"]  # a list of one: that source, as alone
    assert [f.name for f in open_source([one])] == ["a.png", "b.png"]
    with pytest.raises(DataError, match="no such file or folder: .*missing"):
        open_source([one, tmp_path / "missing"])
    with pytest.raises(DataError, match="no images"):
        open_source([tmp_path / "empty", tmp_path / "empty"])


def write_unreadable(folder):
    """Two good images and two that OpenCV cannot decode (garbage; a PNG cut after its header)."""
    good = frames(2)
    cv2.imwrite(str(folder / "a.png"), good[0])
    cv2.imwrite(str(folder / "d.png"), good[1])
    (folder / "b.jpg").write_bytes(b"\x00garbage" * 50)
    (folder / "c.png").write_bytes((folder / "a.png").read_bytes()[:60])


def test_unreadable_images_of_a_folder_are_skipped_or_refused(tmp_path):
    write_unreadable(tmp_path)
    skipped = []
    read = list(open_source(tmp_path, on_unreadable=skipped.append))
    assert [(f.index, f.name) for f in read] == [(0, "a.png"), (3, "d.png")]  # indices: places in the folder
    assert skipped == [tmp_path / "b.jpg", tmp_path / "c.png"]
    with pytest.raises(DataError, match=f"cannot read image {tmp_path / 'b.jpg'}: not a readable image"):
        list(open_source(tmp_path))  # no callback: refused
    with pytest.raises(DataError, match="cannot read image"):
        list(open_source(tmp_path / "c.png", on_unreadable=skipped.append))  # alone: always refused
    with pytest.raises(DataError, match="none of the 2 images could be read"):
        list(open_source([tmp_path / "b.jpg", tmp_path / "c.png"], on_unreadable=skipped.append))


def test_video_frames_carry_their_time_in_the_file(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, frames(5), fps=10)
    source = open_source(str(path))
    assert isinstance(source, CaptureSource) and source.fps == pytest.approx(10)
    assert [(f.index, f.timestamp) for f in source] == [(i, pytest.approx(i / 10)) for i in range(5)]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t / "missing.mp4", "no such file, folder or camera"),
        (lambda t: (t / "empty").mkdir() or t / "empty", "no images"),
        (lambda t: t / "frames_%03d.png", "cannot open image sequence"),
    ],
)
def test_sources_that_cannot_be_opened(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        open_source(make(tmp_path))


def test_video_sink_writes_one_frame_per_write_under_a_partial_name_until_closed(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoSink(path, fps=5) as sink:
        sink.write(frames(1)[0])
        sink.write(np.zeros((24, 32), np.uint8))  # grey and smaller: converted and resized
        assert not path.exists() and sink.partial.exists()
    assert not sink.partial.exists()
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    capture.release()
    VideoSink(tmp_path / "nothing.mp4").close()
    assert not (tmp_path / "nothing.mp4").exists()  # no frame, no file


def test_jsonl_sink_flushes_each_line_and_renames_when_closed(tmp_path):
    path = tmp_path / "faces.jsonl"
    with JsonlSink(path) as sink:
        sink.write({"frame": 0})
        assert json.loads(sink.partial.read_text()) == {"frame": 0}
    assert path.read_text() == '{"frame": 0}\n' and not sink.partial.exists()
    JsonlSink(tmp_path / "nothing.jsonl").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.jsonl"]  # no line, no file


RECORDS = [
    {"frame": 0, "timestamp": None, "image": "a.png", "faces": [
        {"box": [1, 2, 3, 4], "track_id": None, "label": "happy", "probabilities": {"sad": 0.25, "happy": 0.75}},
        {"box": [5, 6, 7, 8], "track_id": None, "label": "sad", "probabilities": {"sad": 0.5, "happy": 0.5}},
    ]},
    {"frame": 1, "timestamp": None, "image": "b.png", "faces": []},
]


def test_csv_sink_writes_a_row_per_face_when_the_block_ends_well(tmp_path):
    path = tmp_path / "faces.csv"
    with CsvSink(path, ["happy", "sad"]) as sink:
        for record in RECORDS:
            sink.write(record)
        assert not path.exists()
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [
        ["image", "x", "y", "width", "height", "label", "happy", "sad"],
        ["a.png", "1", "2", "3", "4", "happy", "0.75", "0.25"],
        ["a.png", "5", "6", "7", "8", "sad", "0.5", "0.5"],
    ]
    assert sink.rows == 2 and [p.name for p in tmp_path.iterdir()] == ["faces.csv"]


def test_csv_sink_leaves_nothing_after_an_error(tmp_path):
    with pytest.raises(DataError):
        with CsvSink(tmp_path / "faces.csv", ["happy", "sad"]) as sink:
            sink.write(RECORDS[0])
            raise DataError("mid-way")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "sink, name, error, message",
    [
        (VideoSink, "out.gif", ConfigError, "use one of"),
        (VideoSink, "missing/out.mp4", DataError, "does not exist"),
        (JsonlSink, "missing/out.jsonl", DataError, "does not exist"),
        (lambda path: CsvSink(path, ["happy"]), "missing/out.csv", DataError, "does not exist"),
    ],
)
def test_bad_output_paths_are_refused_before_any_frame(tmp_path, sink, name, error, message):
    with pytest.raises(error, match=message):
        sink(tmp_path / name)
