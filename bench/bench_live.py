"""End-to-end speed of ``python -m ferlight.live`` on 640 x 480 video with one and with four faces.

    python bench/bench_live.py [--frames 300] [--repeats 3] [--checkpoint PATH]

Each run is the command's own loop (:func:`ferlight.live.run`): read the video, detect, classify,
draw, write the annotated video and the JSONL, no window. The videos are the tests' synthetic
clips (real faces from scikit-image and matplotlib moving over a background, every frame with
faces). The model is the shipped default when it exists, else ``fervgg_small`` with random
weights: speed does not depend on weight values. Prints a Markdown table for bench/RESULTS.md:
the median of ``--repeats`` runs, with detection and classification time per frame apart
(``other`` is reading, drawing and writing), the process's CPU time per frame (all its threads;
less sensitive than wall time to other work on the machine) and the load average around it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_checkpoint import save_checkpoint  # noqa: E402  (the tests' data)
from live_data import compose_frames, write_video  # noqa: E402

from ferlight.face_detection import DETECT_SCALE  # noqa: E402
from ferlight.inference import DETECT_EVERY, Recognizer  # noqa: E402
from ferlight.live import run  # noqa: E402
from ferlight.weights import DEFAULT_WEIGHTS  # noqa: E402

# (label, Recognizer.from_checkpoint options): the command's defaults, then the levers apart.
SETTINGS = [
    (f"defaults (detect_scale {DETECT_SCALE}, detect_every {DETECT_EVERY})", {}),
    ("detect_every 5", {"detect_every": 5}),
    ("full search every frame (detect_every 1)", {"detect_every": 1}),
    ("full resolution (min_face 40), full search every frame", {"detect_every": 1, "detect_scale": 1.0, "min_face": 40}),
]


def bench(checkpoint: Path, video: Path, options: dict, repeats: int, workdir: Path) -> dict:
    recognizer = Recognizer.from_checkpoint(checkpoint, **options)
    runs = []
    for _ in range(repeats):
        cpu_start = time.process_time()
        stats = run(recognizer, video, display=False, output=workdir / "out.mp4", jsonl=workdir / "out.jsonl")
        runs.append((stats, time.process_time() - cpu_start))
    stats, cpu_seconds = sorted(runs, key=lambda r: r[0].fps)[len(runs) // 2]
    frames = stats.frames
    total_ms = 1000 * stats.seconds / frames
    detect_ms, classify_ms = stats.detect_ms / frames, stats.classify_ms / frames
    return {
        "fps": stats.fps,
        "fps_all": [round(s.fps, 1) for s, _ in runs],
        "cpu_ms": 1000 * cpu_seconds / frames,
        "total_ms": total_ms,
        "detect_ms": detect_ms,
        "classify_ms": classify_ms,
        "other_ms": total_ms - detect_ms - classify_ms,
        "faces": stats.faces / frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, help="default: the shipped model, else random fervgg_small")
    parser.add_argument("--torch-threads", type=int, default=1, help="as the command's default (1)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        checkpoint = args.checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None)
        model_note = str(checkpoint) if checkpoint else "fervgg_small, random weights"
        checkpoint = checkpoint or save_checkpoint(workdir / "fervgg_small.ckpt")
        videos = {}
        for n_faces in (1, 4):
            frames, _ = compose_frames(n_frames=args.frames, n_faces=n_faces, empty=())
            videos[n_faces] = workdir / f"faces{n_faces}.mp4"
            write_video(videos[n_faces], frames, fps=30)
        load_before = os.getloadavg()[0]
        rows = []
        for label, options in SETTINGS:
            for n_faces, video in videos.items():
                result = bench(checkpoint, video, options, args.repeats, workdir)
                rows.append((label, n_faces, result))
                print(f"{label}, {n_faces} face(s): {result}", file=sys.stderr)
        load_after = os.getloadavg()[0]
    print(
        f"640 x 480, {args.frames} frames, median of {args.repeats} runs; model: {model_note}; "
        f"torch {torch.__version__} ({args.torch_threads} thread), OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads); {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        f"load average {load_before:.1f} before, {load_after:.1f} after.\n"
    )
    print(
        "| setting | faces | fps, median (runs) | ms/frame | detection ms | classification ms | other ms "
        "| CPU ms/frame | faces found/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, n_faces, r in rows:
        print(
            f"| {label} | {n_faces} | {r['fps']:.1f} ({', '.join(map(str, r['fps_all']))}) | {r['total_ms']:.1f} | "
            f"{r['detect_ms']:.1f} | {r['classify_ms']:.1f} | {r['other_ms']:.1f} | {r['cpu_ms']:.1f} | {r['faces']:.2f} |"
        )


if __name__ == "__main__":
    main()
