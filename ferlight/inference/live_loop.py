"""The live loop under ``python -m ferlight.live``: read a source, recognise, then draw, show and
write every frame, and say what it took (:class:`RunStats`).

The window is OpenCV's (``cv2.imshow``): q or Esc quits, and a key moves on to the next image
when the source is images. The outputs are closed, complete and playable, however the loop ends.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

import cv2
import numpy as np

from ferlight.errors import ConfigError
from ferlight.inference.drawing import annotate
from ferlight.inference.recognizer import Recognizer
from ferlight.inference.video import ImageSource, JsonlSink, VideoSink, open_source

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
    source: int | str | os.PathLike,
    *,
    display: bool = True,
    output: str | os.PathLike | None = None,
    jsonl: str | os.PathLike | None = None,
    max_frames: int | None = None,
) -> RunStats:
    """Read ``source``, recognise, annotate, show and/or write every frame; return what it took.

    The outputs are closed (and so complete and playable) however the loop ends: end of stream,
    a dropped stream, q in the window, Ctrl-C or an error.
    """
    if display:
        check_display()
    frames = open_source(source)
    stats = RunStats()
    fps = None
    with ExitStack() as outputs:
        outputs.callback(frames.close)
        video = outputs.enter_context(VideoSink(output, frames.fps)) if output else None
        log = outputs.enter_context(JsonlSink(jsonl)) if jsonl else None
        if display:
            outputs.callback(cv2.destroyAllWindows)
        start = last = time.perf_counter()
        try:
            for result in recognizer.process_video(frames, max_frames=max_frames):
                now = time.perf_counter()
                rate = 1 / max(now - last, 1e-6)
                fps = rate if fps is None else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * rate
                last = now
                stats.frames += 1
                stats.frames_with_faces += bool(result.faces)
                stats.faces += len(result.faces)
                stats.detect_ms += result.detect_ms
                stats.classify_ms += result.classify_ms
                if log:
                    log.write(result.to_json())
                if video or display:
                    annotated = annotate(result.image, result.faces, fps)
                if video:
                    video.write(annotated)
                if display and _show(annotated, wait_for_key=isinstance(frames, ImageSource)):
                    break
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        stats.seconds = time.perf_counter() - start
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
