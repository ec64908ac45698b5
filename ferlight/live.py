"""Real-time facial emotion recognition from a camera, a video file, a stream URL or images.

    python -m ferlight.live                              # camera 0, the shipped model, a window
    python -m ferlight.live clip.mp4 --checkpoint best.ckpt --no-display \\
        --output annotated.mp4 --jsonl faces.jsonl
    python -m ferlight.live photos/ more/ extra.jpg --run-id 3f2a... --csv faces.csv --no-display
    python -m ferlight.live clip.mp4 --no-display --timeline emotions/   # a plot and a CSV per face

In the window, q or Esc quits (a key moves on to the next image when the source is images).
Ctrl-C stops a headless run; the outputs written so far are kept, complete. A thin layer over
:class:`ferlight.inference.recognizer.Recognizer` and :func:`ferlight.inference.live_loop.run_live`;
the face-detection and recognition flags are the fields of their option dataclasses.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import torch
from jsonargparse import ArgumentParser

from ferlight.errors import ConfigError, exit_on_error
from ferlight.inference.detection import DetectorOptions
from ferlight.inference.live_loop import check_display, run_live
from ferlight.inference.recognizer import Recognizer, RecognizerOptions
from ferlight.options import add_dataclass_arguments, parse_namespace, to_dataclass

FFMPEG_QUIET = -8  # FFmpeg's AV_LOG_QUIET


def build_parser() -> ArgumentParser:
    """The command's options; jsonargparse, as for the other commands, so a bad value is one line."""
    parser = ArgumentParser(
        prog="python -m ferlight.live",
        description="Real-time facial emotion recognition from a camera, a video, a stream or images.",
        exit_on_error=False,
    )
    parser.add_argument(
        "source",
        nargs="*",
        default=[0],
        help="camera index (0: the first camera), video file, URL, image or folder; or several images and folders "
        "(a file of a folder or list that cannot be read is skipped with a warning)",
    )
    model = parser.add_argument_group("model (default: the model shipped with ferlight)")
    model.add_argument("--checkpoint", help="a ferlight checkpoint (.ckpt or slim .pt)")
    model.add_argument("--run-id", help="an MLflow run id: use its best checkpoint")
    model.add_argument("--tracking-uri", help="MLflow tracking URI for --run-id (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    model.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ...")
    faces = parser.add_argument_group("face detection")
    add_dataclass_arguments(faces, DetectorOptions)
    add_dataclass_arguments(parser.add_argument_group("recognition"), RecognizerOptions)
    out = parser.add_argument_group("output")
    out.add_argument("--no-display", action="store_true", help="do not open a window")
    out.add_argument("--output", help="write the annotated video here (.mp4, .avi, ...)")
    out.add_argument("--jsonl", help="write one JSON line per frame here: index, timestamp, faces")
    out.add_argument("--csv", help="images only: write one row per face here: image, x, y, width, height, label, each emotion's probability")
    out.add_argument(
        "--timeline",
        help="video, stream or camera only: write each face track's emotions over time into this folder, "
        "track-<id>.png (a plot) and track-<id>.csv (frame, seconds, probabilities, label)",
    )
    out.add_argument("--max-frames", type=int, help="stop after this many frames")
    cpu = parser.add_argument_group("CPU threads")
    cpu.add_argument("--torch-threads", type=int, default=1, help="for the model on CPU (a few 48 x 48 faces gain nothing from more, and lose much on a busy CPU)")
    cpu.add_argument("--cv-threads", type=int, help="for OpenCV's face detection (null: OpenCV's choice, all cores)")
    return parser


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_namespace(build_parser(), argv)
    options = {**dataclasses.asdict(to_dataclass(args, DetectorOptions)), **dataclasses.asdict(to_dataclass(args, RecognizerOptions))}
    if not args.no_display:
        check_display()
    for flag, value in (("--torch-threads", args.torch_threads), ("--cv-threads", args.cv_threads), ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    torch.set_num_threads(args.torch_threads)
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    # OpenCV's and FFmpeg's own messages would bury our one-line errors (which say what failed).
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(FFMPEG_QUIET))  # read when FFmpeg is first used
    recognizer = Recognizer.from_checkpoint(
        args.checkpoint, run_id=args.run_id, tracking_uri=args.tracking_uri, device=args.device, **options
    )
    stats = run_live(
        recognizer,
        args.source,
        display=not args.no_display,
        output=args.output,
        jsonl=args.jsonl,
        csv=args.csv,
        timeline=args.timeline,
        max_frames=args.max_frames,
    )
    print(stats.summary())
    print(recognizer.precision.line())


if __name__ == "__main__":
    main()
