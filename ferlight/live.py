"""Real-time facial emotion recognition from a camera, a video file, a stream URL or images.

    python -m ferlight.live                              # camera 0, the shipped model, a window
    python -m ferlight.live clip.mp4 --checkpoint best.ckpt --no-display \\
        --output annotated.mp4 --jsonl faces.jsonl
    python -m ferlight.live photos/ --run-id 3f2a... --jsonl faces.jsonl --no-display

In the window, q or Esc quits (a key moves on to the next image when the source is images).
Ctrl-C stops a headless run; the outputs written so far are kept, complete. A thin layer over
:class:`ferlight.inference.recognizer.Recognizer`.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

import cv2
import torch
from jsonargparse import ArgumentParser

from ferlight.options import parse_namespace
from ferlight.errors import ConfigError, exit_on_error
from ferlight.inference.detection import DETECT_SCALE, DETECTORS, MIN_FACE, MIN_NEIGHBORS, SCALE_FACTOR
from ferlight.inference.recognizer import DETECT_EVERY, SMOOTHING, Recognizer
from ferlight.inference.video import ImageSource, JsonlSink, VideoSink, annotate, open_source

WINDOW = "ferlight"
QUIT_KEYS = (ord("q"), 27)  # q, Esc
FFMPEG_QUIET = -8  # FFmpeg's AV_LOG_QUIET
FPS_SMOOTHING = 0.9  # the displayed frame rate is a moving average of per-frame rates


@dataclass
class RunStats:
    """What :func:`run` did: frames processed, those with faces, wall time and mean stage times."""

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


def run(
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


def _show(image, wait_for_key: bool) -> bool:
    """Show ``image`` in the window; True when the user asks to quit (key or closed window)."""
    cv2.imshow(WINDOW, image)
    key = cv2.waitKey(0 if wait_for_key else 1) & 0xFF
    return key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1


def _check_display() -> None:
    """On Linux without a display server, OpenCV's window would abort the process: say so instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("no display available (DISPLAY is not set): use --no-display with --output or --jsonl")


def build_parser() -> ArgumentParser:
    """The command's options; jsonargparse, as for the other commands, so a bad value is one line."""
    parser = ArgumentParser(
        prog="python -m ferlight.live",
        description="Real-time facial emotion recognition from a camera, a video, a stream or images.",
        exit_on_error=False,
    )
    parser.add_argument("source", nargs="?", default="0", help="camera index (0: the first camera), video file, URL, image or folder")
    model = parser.add_argument_group("model (default: the model shipped with ferlight)")
    model.add_argument("--checkpoint", help="a ferlight checkpoint (.ckpt or slim .pt)")
    model.add_argument("--run-id", help="an MLflow run id: use its best checkpoint")
    model.add_argument("--tracking-uri", help="MLflow tracking URI for --run-id (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    model.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ...")
    model.add_argument("--precision", default="auto", help="auto (bf16 only where measured faster on this machine), 32-true or bf16-mixed (default: %(default)s)")
    faces = parser.add_argument_group("face detection")
    faces.add_argument("--detector", choices=DETECTORS, default="haar", help="Haar cascade (shipped) or YuNet")
    faces.add_argument("--detector-model", help="the YuNet ONNX model (face_detection_yunet_*.onnx)")
    faces.add_argument("--scale-factor", type=float, default=SCALE_FACTOR, help="Haar: scale step between searched sizes (default: %(default)s)")
    faces.add_argument("--min-neighbors", type=int, default=MIN_NEIGHBORS, help="Haar: overlapping hits needed for a face (default: %(default)s)")
    faces.add_argument("--min-face", type=int, default=MIN_FACE, help="smallest face found, in pixels (default: %(default)s)")
    faces.add_argument("--detect-scale", type=float, default=DETECT_SCALE, help="search the whole frame downscaled by this factor; the Haar cascade finds no face under 24 / scale px (default: %(default)s)")
    faces.add_argument("--detect-every", type=int, default=DETECT_EVERY, help="search the whole frame every N frames, near known faces in between (default: %(default)s; 1: always in full)")
    parser.add_argument("--smoothing", type=float, default=SMOOTHING, help="weight of a face's past probabilities, in [0, 1) (default: %(default)s; 0: raw per-frame output)")
    out = parser.add_argument_group("output")
    out.add_argument("--no-display", action="store_true", help="do not open a window")
    out.add_argument("--output", help="write the annotated video here (.mp4, .avi, ...)")
    out.add_argument("--jsonl", help="write one JSON line per frame here: index, timestamp, faces")
    out.add_argument("--max-frames", type=int, help="stop after this many frames")
    cpu = parser.add_argument_group("CPU threads")
    cpu.add_argument("--torch-threads", type=int, default=1, help="for the model on CPU (a few 48 x 48 faces gain nothing from more, and lose much on a busy CPU)")
    cpu.add_argument("--cv-threads", type=int, help="for OpenCV's face detection (null: OpenCV's choice, all cores)")
    return parser


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_namespace(build_parser(), argv)
    if not args.no_display:
        _check_display()
    for option, value in (("--torch-threads", args.torch_threads), ("--cv-threads", args.cv_threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    torch.set_num_threads(args.torch_threads)
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    # OpenCV's and FFmpeg's own messages would bury our one-line errors (which say what failed).
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(FFMPEG_QUIET))  # read when FFmpeg is first used
    recognizer = Recognizer.from_checkpoint(
        args.checkpoint,
        run_id=args.run_id,
        tracking_uri=args.tracking_uri,
        device=args.device,
        detector=args.detector,
        detector_model=args.detector_model,
        scale_factor=args.scale_factor,
        min_neighbors=args.min_neighbors,
        min_face=args.min_face,
        detect_scale=args.detect_scale,
        detect_every=args.detect_every,
        smoothing=args.smoothing,
        precision=args.precision,
    )
    stats = run(
        recognizer,
        args.source,
        display=not args.no_display,
        output=args.output,
        jsonl=args.jsonl,
        max_frames=args.max_frames,
    )
    print(stats.summary())
    print(recognizer.precision.line())


if __name__ == "__main__":
    main()
