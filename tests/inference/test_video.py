"""Sources and sinks of live inference: what open_source opens, frames and timestamps, and outputs
written under a partial name until complete."""

import json

import cv2
import numpy as np
import pytest

from ferlight.errors import ConfigError, DataError
from ferlight.inference.video import CaptureSource, ImageSource, JsonlSink, VideoSink, open_source
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


@pytest.mark.parametrize(
    "sink, name, error, message",
    [
        (VideoSink, "out.gif", ConfigError, "use one of"),
        (VideoSink, "missing/out.mp4", DataError, "does not exist"),
        (JsonlSink, "missing/out.jsonl", DataError, "does not exist"),
    ],
)
def test_bad_output_paths_are_refused_before_any_frame(tmp_path, sink, name, error, message):
    with pytest.raises(error, match=message):
        sink(tmp_path / name)
