"""The live loop: every frame recognised, written and counted; a progress bar over images on a
terminal only; unreadable images skipped with a line; the window needs a display."""

import io
import json
import sys

import cv2
import pytest

from ferlight.errors import ConfigError
from ferlight.inference.live_loop import RunStats, check_display, run_live
from ferlight.inference.recognizer import Recognizer
from ferlight.testing.live_clips import write_video
from ferlight.testing.synthetic_clip import compose_frames


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread."""


def test_run_counts_frames_faces_and_time(tmp_path, checkpoint):
    frames, boxes = compose_frames(n_frames=6, n_faces=2, empty=(0, 5))
    video = tmp_path / "clip.avi"
    write_video(video, frames, fps=10)
    log = tmp_path / "faces.jsonl"
    stats = run_live(Recognizer.from_checkpoint(checkpoint), video, display=False, jsonl=log)
    assert (stats.frames, stats.frames_with_faces, stats.faces) == (6, 4, 8)
    assert stats.seconds > 0 and stats.detect_ms > 0 and stats.classify_ms > 0
    assert [len(json.loads(line)["faces"]) for line in log.read_text().splitlines()] == [len(b) for b in boxes]


class Terminal(io.StringIO):
    """What tqdm takes for a terminal."""

    def isatty(self):
        return True


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of 3 images with faces and, between them, one file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    frames, _ = compose_frames(n_frames=4, n_faces=1, empty=())
    for i, frame in enumerate(frames[1:]):
        cv2.imwrite(str(folder / f"{2 * i}.png"), frame)
    (folder / "1.jpg").write_bytes(b"\x00garbage" * 50)
    return folder


@pytest.mark.parametrize("terminal", [True, False])
def test_images_show_a_progress_bar_on_a_terminal_only_and_name_the_skipped_file(monkeypatch, capsys, checkpoint, photos, terminal):
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    stats = run_live(Recognizer.from_checkpoint(checkpoint), photos, display=False)
    assert (stats.frames, stats.faces) == (3, 3)
    lines = stderr.getvalue().replace("\r", "\n").splitlines()
    warning = f"warning: skipped {photos / '1.jpg'}: not a readable image"
    if terminal:
        assert warning in lines and any("4/4" in line for line in lines), lines  # the skipped file counts as done
    else:
        assert lines == [warning]


def test_summary_gives_rates_per_frame():
    stats = RunStats(frames=10, frames_with_faces=4, faces=6, seconds=2.0, detect_ms=50.0, classify_ms=20.0)
    assert stats.summary() == (
        "10 frames (4 with faces, 6 faces) in 2.0 s: 5.0 fps; per frame: detection 5.0 ms, classification 2.0 ms"
    )
    assert RunStats().fps == 0.0


def test_window_needs_a_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ConfigError, match="no display available"):
        check_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    check_display()
