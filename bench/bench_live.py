"""Live recognition on real-face clips with ground truth: accuracy of the faces found, tracking,
label flicker and speed, per clip set, optionally beside the ``fer`` package in the same run.

    python bench/make_live_clips.py --out .cache/live_clips --data ../shared/data/fer2013.csv.gz
    python bench/bench_live.py --clips .cache/live_clips [--sets heldout] [--peer]

Each clip runs through ``python -m ferlight.live``'s own loop
(:func:`ferlight.inference.live_loop.run_live`: read, detect, classify, write the JSONL; no window,
no video unless ``--output-video``) with the command's defaults, or with ``--set NAME=VALUE``
overrides (fields of DetectorOptions and RecognizerOptions, as ``Recognizer.from_checkpoint``
takes them) to compare settings; ``--ceiling`` adds the same detector searching every whole frame at full size, the most
that scaling, near-face search and tracking could keep. Scores (:mod:`ferlight.testing.live_scoring`): frames with exactly the right faces,
missed and false faces, track-id switches on faces that stay in view, label changes per 100
frames; speed: fps over all frames of the set, over the one-face clips and over the clips with two
faces wholly in view, with detection and
classification ms per frame. ``--peer`` runs the ``fer`` package (``bench/peer_fer.py``, its own
virtual environment) on the same clips right after, and prints its rows and the fps ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

from ferlight.hardware.machine import summary as describe_machine
from ferlight.inference.live_loop import run_live
from ferlight.inference.recognizer import Recognizer
from ferlight.testing.live_clips import read_truth
from ferlight.testing.live_scoring import LiveScore, score_clip

# Clip kinds (ferlight.testing.live_clips.CLIP_KINDS) timed on their own: one face, and two faces
# that stay wholly in the frame.
ONE_FACE = ("one-still", "one-slow", "one-fast", "one-large")
TWO_FACES = ("two-second-enters", "two-small-blurred", "two-dark-jpeg", "two-clean")


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def load_set(clips: Path, set_name: str) -> tuple[list[Path], dict[str, dict]]:
    """The clips of one set and their ground truth by clip name; one line and exit 2 if there are none."""
    videos = sorted((clips / set_name).glob("*.mp4"))
    if not videos:
        print(f"error: no clips in {clips / set_name}: run bench/make_live_clips.py first", file=sys.stderr)
        raise SystemExit(2)
    return videos, {v.stem: read_truth(v) for v in videos}


def bench_ferlight(recognizer: Recognizer, videos: list[Path], workdir: Path, output_video: bool) -> dict[str, tuple]:
    """{clip: (records, frames, seconds, detect_ms, classify_ms)} from the command's loop."""
    results = {}
    for video in videos:
        jsonl = workdir / f"{video.stem}.jsonl"
        stats = run_live(recognizer, video, display=False, jsonl=jsonl, output=workdir / "out.mp4" if output_video else None)
        results[video.stem] = (read_jsonl(jsonl), stats.frames, stats.seconds, stats.detect_ms, stats.classify_ms)
    return results


def bench_peer(clips: Path, set_name: str, workdir: Path) -> dict[str, tuple]:
    """The same for the fer package, run by bench/peer_fer.py in its own environment."""
    only_this_set, out = workdir / "peer_clips", workdir / "peer"
    only_this_set.mkdir()
    (only_this_set / set_name).symlink_to((clips / set_name).resolve())
    script = Path(__file__).with_name("peer_fer.py")
    subprocess.run([sys.executable, str(script), "--clips", str(only_this_set), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    results = {}
    for jsonl in sorted((out / set_name).glob("*.jsonl")):
        timing = json.loads(jsonl.with_suffix(".timing.json").read_text())
        results[jsonl.stem] = (read_jsonl(jsonl), timing["frames"], timing["seconds"], None, None)
    return results


def summarise(results: dict[str, tuple], truths: dict[str, dict]) -> dict:
    total = LiveScore()
    frames = seconds = detect = classify = 0.0
    timed = {kinds: [0, 0.0] for kinds in (ONE_FACE, TWO_FACES)}  # frames, seconds
    per_clip = {}
    for clip, (records, n, secs, det, cls) in results.items():
        score = score_clip(truths[clip], records)
        per_clip[clip] = score
        total += score
        frames, seconds = frames + n, seconds + secs
        detect += det or 0.0
        classify += cls or 0.0
        for kinds, sums in timed.items():
            if clip.rsplit("-", 1)[0] in kinds:  # KIND-SEED
                sums[0] += n
                sums[1] += secs
    fps = {kinds: n / secs if secs else float("nan") for kinds, (n, secs) in timed.items()}
    return {
        "score": total,
        "per_clip": per_clip,
        "fps": frames / seconds,
        "fps_one_face": fps[ONE_FACE],
        "fps_two_faces": fps[TWO_FACES],
        "detect_ms": detect / frames,
        "classify_ms": classify / frames,
    }


def row(name: str, set_name: str, s: dict, timed_stages: bool = True) -> str:
    sc: LiveScore = s["score"]
    stages = f"{s['detect_ms']:.1f} | {s['classify_ms']:.1f}" if timed_stages else "- | -"
    return (
        f"| {name} | {set_name} | {sc.right_frames}/{sc.frames} ({100 * sc.right_rate:.1f}%) | {sc.missed}/{sc.faces} | "
        f"{sc.false} | {sc.switches} | {sc.flicker_per_100:.1f} | {s['fps']:.1f} | {s['fps_one_face']:.1f} | {s['fps_two_faces']:.1f} | {stages} |"
    )


HEADER = (
    "| system | clips | frames right | missed faces | false faces | id switches | label changes /100 frames "
    "| fps (all clips) | fps (one face) | fps (two faces) | detection ms/frame | classification ms/frame |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path(".cache/live_clips"))
    parser.add_argument("--sets", nargs="+", default=["tune", "heldout"])
    parser.add_argument("--checkpoint", help="default: the model shipped with ferlight")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a DetectorOptions or RecognizerOptions field, e.g. detect_every=5")
    parser.add_argument("--peer", action="store_true", help="also run the fer package on the same clips (bench/peer_fer.py)")
    parser.add_argument("--ceiling", action="store_true", help="also run the same detector alone: the whole frame at full size, every frame (what tracking and scaling could at best keep)")
    parser.add_argument("--output-video", action="store_true", help="also draw and write the annotated video, as --output does")
    parser.add_argument("--per-clip", action="store_true", help="print a row per clip too")
    parser.add_argument("--torch-threads", type=int, default=1, help="as the command's default (1)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    options = dict(item.split("=", 1) for item in args.set)
    options = {k: parse_value(v) for k, v in options.items()}
    recognizer = Recognizer.from_checkpoint(args.checkpoint, **options)
    label = "ferlight" + (f" ({', '.join(args.set)})" if args.set else " (defaults)")
    exhaustive = Recognizer.from_checkpoint(args.checkpoint, **{**options, "detect_every": 1, "detect_scale": 1.0}) if args.ceiling else None
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            videos, truths = load_set(args.clips, set_name)
            workdir = Path(tmp) / set_name
            workdir.mkdir()
            start = time.perf_counter()
            ours = summarise(bench_ferlight(recognizer, videos, workdir, args.output_video), truths)
            lines.append(row(label, set_name, ours))
            print(f"{set_name}: ferlight done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if args.per_clip:
                for clip, sc in ours["per_clip"].items():
                    lines.append(f"|   {clip} | {set_name} | {sc.right_frames}/{sc.frames} | {sc.missed}/{sc.faces} | {sc.false} | {sc.switches} | {sc.flicker_per_100:.1f} | | | | | |")
            if exhaustive:
                lines.append(row("the detector alone (full size, every frame)", set_name, summarise(bench_ferlight(exhaustive, videos, workdir, False), truths)))
            if args.peer:
                peer = summarise(bench_peer(args.clips, set_name, workdir), truths)
                lines.append(row("fer package (peer)", set_name, peer, timed_stages=False))
                lines.append(f"| fps ratio ferlight / fer | {set_name} | | | | | | {ours['fps'] / peer['fps']:.2f}x | {ours['fps_one_face'] / peer['fps_one_face']:.2f}x | {ours['fps_two_faces'] / peer['fps_two_faces']:.2f}x | | |")
    print(f"{describe_machine()}; torch {torch.__version__} ({args.torch_threads} thread), OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)\n")
    print(HEADER)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
