"""The live loop under ``python -m ferlight.live``: read a source, recognise, then draw, show and
write every frame, and say what it took (:class:`RunStats`).

The window is OpenCV's (``cv2.imshow``): q or Esc quits, and a key moves on to the next image
when the source is images. The outputs are closed, complete and playable, however the loop ends.
Over a folder or list of images, a progress bar runs on stderr when it is a terminal (nothing is
printed for it otherwise), and a file that cannot be read is named in one line and skipped.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ferlight.errors import ConfigError
from ferlight.inference.drawing import annotate
from ferlight.inference.recognizer import IMAGES_PER_BATCH, Recognizer
from ferlight.inference.timeline import Timeline
from ferlight.inference.video import UNREADABLE, CsvSink, ImageSource, JsonlSink, VideoSink, open_source

WINDOW = "ferlight"
QUIT_KEYS = (ord("q"), 27)  # q, Esc
FPS_SMOOTHING = 0.9  # the displayed frame rate is a moving average of per-frame rates


@dataclass
class RunStats:
    """What :func:`run_live` did: frames processed, those with faces, wall time and mean stage times."""

    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    seconds: float = 0.0
    detect_ms: float = 0.0
    classify_ms: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        per_frame = max(self.frames, 1)
        return (
            f"{self.frames} frames ({self.frames_with_faces} with faces, {self.faces} faces) in "
            f"{self.seconds:.1f} s: {self.fps:.1f} fps; per frame: detection {self.detect_ms / per_frame:.1f} ms, "
            f"classification {self.classify_ms / per_frame:.1f} ms"
        )


def run_live(
    recognizer: Recognizer,
    source: int | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    display: bool = True,
    output: str | os.PathLike | None = None,
    jsonl: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
    timeline: str | os.PathLike | None = None,
    max_frames: int | None = None,
) -> RunStats:
    """Read ``source``, recognise, annotate, show and/or write every frame; return what it took.

    ``source``: what :func:`~ferlight.inference.video.open_source` opens; in a folder or a list of
    images, a file that cannot be read is skipped with a warning line on stderr. ``csv``: one row
    per face (images only). ``timeline``: a folder for each face track's probabilities over time
    (video, stream or camera only; :class:`~ferlight.inference.timeline.Timeline`).
    The outputs are closed (and so complete and playable) however the loop ends: end of stream,
    a dropped stream, q in the window, Ctrl-C or an error; the CSV and the timelines are written
    only when it ends without an error.
    """
    if display:
        check_display()

    def skip(path: Path) -> None:  # bar: the progress bar made below, before any file is read
        tqdm.write(f"warning: skipped {path}: {UNREADABLE}", file=sys.stderr)
        bar.update()

    frames = open_source(source, on_unreadable=skip)
    photos = isinstance(frames, ImageSource)
    stats = RunStats()
    fps = None
    with ExitStack() as outputs:
        outputs.callback(frames.close)
        if csv and not photos:
            raise ConfigError("--csv is for images (one row per face of each); on video use --jsonl or --timeline")
        if timeline and photos:
            raise ConfigError("--timeline is for a video, stream or camera: images have no time (use --csv or --jsonl)")
        tracks = Timeline(timeline, recognizer.class_names) if timeline else None
        video = outputs.enter_context(VideoSink(output, frames.fps)) if output else None
        log = outputs.enter_context(JsonlSink(jsonl)) if jsonl else None
        table = outputs.enter_context(CsvSink(csv, recognizer.class_names)) if csv else None
        # Over images only; disable=None: no bar, not even a line, when stderr is not a terminal.
        total = len(frames.paths[:max_frames]) if photos else None
        bar = outputs.enter_context(tqdm(total=total, unit="image", file=sys.stderr, disable=None if photos else True))
        if display:
            outputs.callback(cv2.destroyAllWindows)
        per_batch = 1 if display else IMAGES_PER_BATCH  # the window shows each photo as soon as it is done
        start = last = time.perf_counter()
        try:
            for result in recognizer.process_video(frames, max_frames=max_frames, images_per_batch=per_batch):
                now = time.perf_counter()
                rate = 1 / max(now - last, 1e-6)
                fps = rate if fps is None else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * rate
                last = now
                stats.frames += 1
                stats.frames_with_faces += bool(result.faces)
                stats.faces += len(result.faces)
                stats.detect_ms += result.detect_ms
                stats.classify_ms += result.classify_ms
                bar.update()
                if log or table:
                    record = result.to_json()
                if log:
                    log.write(record)
                if table:
                    table.write(record)
                if tracks:
                    tracks.add(result)
                if video or display:
                    annotated = annotate(result.image, result.faces, fps)
                if video:
                    video.write(annotated)
                if display and _show(annotated, wait_for_key=photos):
                    break
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        stats.seconds = time.perf_counter() - start
        if tracks:
            tracks.write()
    return stats


def check_display() -> None:
    """On Linux without a display server, OpenCV's window would abort the process: say so instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("no display available (DISPLAY is not set): use --no-display with --output or --jsonl")


def _show(image: np.ndarray, wait_for_key: bool) -> bool:
    """Show ``image`` in the window; True when the user asks to quit (key or closed window)."""
    cv2.imshow(WINDOW, image)
    key = cv2.waitKey(0 if wait_for_key else 1) & 0xFF
    return key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
