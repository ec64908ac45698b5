"""The live path's accuracy on FER2013 faces rendered into frames, beside the direct evaluation.

    python bench/bench_live_crop.py --split val --grid         # tune the crop geometry (PublicTest)
    python bench/bench_live_crop.py --split test               # measure it once (PrivateTest)
    python bench/bench_live_crop.py --split val --placement cut --edge-modes replicate clip --extra-margins 0.1 0.2

Each face of the split (standard protocol: ``val`` is PublicTest, ``test`` PrivateTest) is upscaled
from 48 px to a random side in [``--min-side``, ``--max-side``] px (cv2.INTER_CUBIC) and pasted, grey,
into a 640 x 480 natural image shipped by scikit-image, at a random position wholly inside the
frame (``--placement edge``: flush with a random frame edge; ``cut``: 5-30% of it past that edge),
one face per frame, reproducibly from ``--seed`` and the face's row. The live detector
(``--detector``, default: the live default), built with its defaults at run time (printed), searches the frame; the detection whose centre lies inside the
pasted face (the best overlap if several) is the face, any other box a false face. Each crop
geometry (:mod:`ferlight.inference.crops`) cuts that box out and :meth:`ferlight.inference.recognizer.Recognizer.classify`
classifies it (grey, 48 x 48 by INTER_AREA, ``eval_transform``): the live accuracy. The direct
accuracy is the model on the original 48 x 48 pixels through ``eval_transform``, exactly what
``python -m ferlight.evaluate --protocol standard --split ... --tta none`` computes, on the same
detected faces and on all faces, in float32 for both unless ``--precision`` says otherwise.
``oracle`` crops the pasted square itself: what a perfect detector box would give (only the
resampling is lost).

``--grid`` scores every margin x aspect x shift of the lists given and is refused on ``test``:
geometry is chosen on PublicTest and measured once on PrivateTest. Without ``--grid`` the rows are
the baseline (the detector's exact box) and the module's defaults (``CROP_MARGIN`` ...). Prints
Markdown tables: command, split, CPU model, detector options, and per geometry the detection
rate, live and direct accuracy on the detected faces, the gap, the paired change from the
baseline with its standard error, and direct accuracy on all faces.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ferlight.data import load_fer2013, split_protocol
from ferlight.evaluation.predict import predict_proba
from ferlight.inference.boxes import box_iou
from ferlight.inference.checkpoint import load_model
from ferlight.inference.crops import CROP_ASPECT, CROP_EDGE, CROP_MARGIN, CROP_SHIFT, EDGE_MODES, crop_box, cut
from ferlight.inference.detection import HAAR_CASCADE, DetectorOptions, FaceDetector, HaarDetector, create_detector
from ferlight.inference.recognizer import Recognizer
from ferlight.options import DETECTORS
from ferlight.weights import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013_images.u8.xz"
FRAME = (640, 480)  # width, height
BACKGROUNDS = ("coffee", "rocket", "chelsea", "brick", "gravel", "grass")  # skimage.data, no human faces
SPLIT_NAMES = {"val": "PublicTest", "test": "PrivateTest"}
CHUNK = 256  # faces per classification batch


@dataclass(frozen=True)
class Geometry:
    name: str
    margin: float = 0.0
    aspect: float = 1.0
    shift: float = 0.0
    edge: str = CROP_EDGE
    oracle: bool = False  # crop the pasted face's own square, not the detector's box

    def describe(self) -> str:
        if self.oracle:
            return "pasted square (oracle)"
        return f"margin {self.margin:g}, aspect {self.aspect:g}, shift {self.shift:g}, {self.edge}"


def backgrounds() -> list[np.ndarray]:
    from skimage import data as skdata

    frames = []
    for name in BACKGROUNDS:
        image = getattr(skdata, name)()
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        frames.append(cv2.resize(bgr, FRAME, interpolation=cv2.INTER_AREA))
    return frames


def placement(row: int, seed: int, sides: tuple[int, int], where: str) -> tuple[int, int, int, int]:
    """(background index, x, y, side) of the face of FER2013 row ``row``: reproducible per row."""
    rng = np.random.default_rng([seed, row])
    side = int(rng.integers(sides[0], sides[1] + 1))
    background = int(rng.integers(len(BACKGROUNDS)))
    width, height = FRAME
    x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    if where in ("edge", "cut"):  # flush with one frame edge (edge), or 5-30% of the side past it (cut)
        edge = int(rng.integers(4))
        out = int(round(rng.uniform(0.05, 0.3) * side)) if where == "cut" else 0
        x = -out if edge == 0 else width - side + out if edge == 1 else x
        y = -out if edge == 2 else height - side + out if edge == 3 else y
    return background, x, y, side


def render(face: np.ndarray, background: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    """``background`` with ``face`` upscaled to ``side`` px pasted at (x, y) (the part inside the frame)."""
    frame = background.copy()
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    height, width = frame.shape[:2]
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + side, width), min(y + side, height)
    frame[top:bottom, left:right] = big[top - y : bottom - y, left - x : right - x, None]
    return frame


def detector_options(detector: FaceDetector) -> dict:
    """The settings the detector was built with (and the Haar cascade's file), for the report."""
    settings = {k: v for k, v in vars(detector).items() if isinstance(v, (bool, int, float, str, tuple))}
    return {**settings, "cascade": HAAR_CASCADE.name} if isinstance(detector, HaarDetector) else settings


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import platform

    return platform.processor() or platform.machine()


def geometries(args) -> list[Geometry]:
    if args.grid:
        grid = [
            Geometry(f"m{m:g} a{a:g} s{s:g}", m, a, s, CROP_EDGE)
            for m, a, s in itertools.product(args.margins, args.aspects, args.shifts)
        ]
        rows = [Geometry("baseline (detector box)", edge="clip")] + grid
    else:
        rows = [
            Geometry("baseline (detector box)", edge="clip"),
            Geometry("chosen (face_crop defaults)", CROP_MARGIN, CROP_ASPECT, CROP_SHIFT, CROP_EDGE),
        ]
        for m in args.extra_margins:
            rows.append(Geometry(f"margin {m:g}", m, CROP_ASPECT, CROP_SHIFT, CROP_EDGE))
    if args.edge_modes:
        rows = [rows[0]] + [
            Geometry(f"{g.name} [{edge}]", g.margin, g.aspect, g.shift, edge) for g in rows[1:] for edge in args.edge_modes
        ]
    return rows + [Geometry("oracle", edge="replicate", oracle=True)]


def run(args) -> dict:
    data = load_fer2013(args.data)
    rows = split_protocol(data, "standard")[args.split]
    model = load_model(args.checkpoint)
    # Live and direct in the same precision (float32 unless --precision says otherwise): the gap is the crop's.
    direct_all = predict_proba([model], data.images[rows], precision=args.precision).argmax(1)
    labels = data.labels[rows]
    split_size = len(rows)
    if args.limit and args.limit < len(rows):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(rows), args.limit, replace=False))
        rows, labels, direct_all = rows[keep], labels[keep], direct_all[keep]
    recognizer = Recognizer(model, create_detector(DetectorOptions(detector=args.detector)), precision=args.precision)
    detector = recognizer.detector
    bgs = backgrounds()
    geoms = geometries(args)
    n = len(rows)
    found = np.zeros(n, bool)
    false_faces = np.zeros(n, int)
    iou = np.full(n, np.nan)
    side_ratio = np.full(n, np.nan)  # pasted side / detector box side
    offset = np.full((n, 2), np.nan)  # (pasted centre - box centre) / box side
    sides = np.zeros(n, int)
    bg_of = np.zeros(n, int)
    live = {g: np.full(n, -1) for g in geoms}
    past_edge = {g: np.zeros(n, bool) for g in geoms}
    detect_s = classify_s = 0.0
    start = time.perf_counter()
    for first in range(0, n, CHUNK):
        chunk = range(first, min(first + CHUNK, n))
        crops = {g: [] for g in geoms}
        kept = []
        for i in chunk:
            b, x, y, side = placement(int(rows[i]), args.seed, (args.min_side, args.max_side), args.placement)
            sides[i], bg_of[i] = side, b
            frame = render(data.images[rows[i]], bgs[b], x, y, side)
            t = time.perf_counter()
            boxes = detector.detect(frame)
            detect_s += time.perf_counter() - t
            truth = np.array([[x, y, side, side]])
            cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
            inside = (cx >= x) & (cx < x + side) & (cy >= y) & (cy < y + side)
            false_faces[i] = len(boxes) - (1 if inside.any() else 0)
            if not inside.any():
                continue
            overlap = box_iou(boxes, truth)[:, 0]
            best = int(np.argmax(np.where(inside, overlap, -1)))
            box = boxes[best]
            found[i], iou[i] = True, overlap[best]
            side_ratio[i] = side / max(box[2], box[3])
            offset[i] = ((x + side / 2 - (box[0] + box[2] / 2)) / box[2], (y + side / 2 - (box[1] + box[3] / 2)) / box[3])
            kept.append(i)
            for g in geoms:
                if g.oracle:
                    rect = (x, y, side, side)
                else:
                    rect = crop_box(box, g.margin, g.aspect, g.shift)
                past_edge[g][i] = rect[0] < 0 or rect[1] < 0 or rect[0] + rect[2] > FRAME[0] or rect[1] + rect[3] > FRAME[1]
                crops[g].append(cut(frame, rect, g.edge))
        t = time.perf_counter()
        for g in geoms:
            if kept:
                live[g][kept] = recognizer.classify(crops[g]).argmax(1)
        classify_s += time.perf_counter() - t
        done = chunk[-1] + 1
        print(f"{done}/{n} faces, {found[:done].sum()} found, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return {
        "rows": rows, "split_size": split_size, "labels": labels, "direct": direct_all, "found": found, "false_faces": false_faces, "iou": iou,
        "side_ratio": side_ratio, "offset": offset, "sides": sides, "bg": bg_of, "live": live, "past_edge": past_edge,
        "geoms": geoms, "detector": detector_options(detector), "detector_class": type(detector).__name__, "detect_ms": 1000 * detect_s / n,
        "classify_s": classify_s, "seconds": time.perf_counter() - start,
    }


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def report(args, r: dict) -> None:
    labels, direct, found = r["labels"], r["direct"], r["found"]
    n, nf = len(labels), int(found.sum())
    direct_ok = direct == labels
    direct_found = direct_ok[found].mean()
    base = r["geoms"][0]
    base_ok = r["live"][base][found] == labels[found]
    command = "python bench/bench_live_crop.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"\n`{command}`\n")
    print(
        f"- split: {args.split} ({SPLIT_NAMES[args.split]}), {n} faces"
        + (f" (a fixed random subset of {r['split_size']}, seed {args.seed})" if n < r["split_size"] else "")
        + f"; placement {args.placement}; face side {args.min_side}-{args.max_side} px; seed {args.seed}"
    )
    print(f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__} ({torch.get_num_threads()} thread(s)), "
          f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} thread(s))")
    print(f"- detector: {r['detector_class']} defaults {r['detector']}; {r['detect_ms']:.1f} ms a frame")
    print(f"- model: {args.checkpoint}; precision {args.precision}, live and direct alike")
    print(f"- detected {nf}/{n} faces ({pct(nf / n)}); false faces {int(r['false_faces'].sum())} in "
          f"{int((r['false_faces'] > 0).sum())} frames; direct accuracy: all faces {pct(direct_ok.mean())}, "
          f"detected {pct(direct_found)}, missed {pct(direct_ok[~found].mean()) if nf < n else '-'}")
    ratio, off = r["side_ratio"][found], r["offset"][found]
    q = np.quantile(ratio, [0.1, 0.5, 0.9])
    print(f"- detector box vs pasted face: side ratio (face / box) median {q[1]:.3f} (10-90%: {q[0]:.3f}-{q[2]:.3f}); "
          f"centre offset / box side: x {np.median(off[:, 0]):+.3f}, y {np.median(off[:, 1]):+.3f} (median); "
          f"IoU median {np.nanmedian(r['iou']):.3f}")
    print(f"- run time {r['seconds']:.0f} s (classification {r['classify_s']:.0f} s for {len(r['geoms'])} geometries)\n")
    print("| geometry | crop | detected | live acc (detected) | direct acc (same faces) | gap (live - direct) "
          "| change vs baseline (paired, ± s.e.) | direct acc (all faces) | crops past frame edge (live acc there) |")
    print("|---|---|---|---|---|---|---|---|---|")
    ordered = r["geoms"]
    if args.grid:  # baseline first, then best live accuracy first
        ordered = [base] + sorted(r["geoms"][1:], key=lambda g: -(r["live"][g][found] == labels[found]).mean())
    for g in ordered:
        ok = r["live"][g][found] == labels[found]
        gained, lost = int((ok & ~base_ok).sum()), int((~ok & base_ok).sum())
        change = (gained - lost) / nf
        se = np.sqrt(gained + lost) / nf
        edge = r["past_edge"][g][found]
        edge_note = f"{int(edge.sum())} ({pct(ok[edge].mean())})" if edge.any() else "0"
        print(f"| {g.name} | {g.describe()} | {nf}/{n} ({pct(nf / n)}) | {pct(ok.mean())} | {pct(direct_found)} | "
              f"{100 * (ok.mean() - direct_found):+.2f} | {100 * change:+.2f} ± {100 * se:.2f} | {pct(direct_ok.mean())} | {edge_note} |")
    print("\nDetection by face side (px), and by background:\n")
    print("| face side | faces | detected | direct acc, detected | direct acc, missed |")
    print("|---|---|---|---|---|")
    edges = list(range(args.min_side, args.max_side + 1, 20)) + [args.max_side + 1]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r["sides"] >= lo) & (r["sides"] < hi)
        if sel.any():
            miss = sel & ~found
            print(f"| {lo}-{hi - 1} | {int(sel.sum())} | {pct(found[sel].mean())} | {pct(direct_ok[sel & found].mean())} | "
                  f"{pct(direct_ok[miss].mean()) if miss.any() else '-'} |")
    for b, name in enumerate(BACKGROUNDS):
        sel = r["bg"] == b
        if sel.any():
            print(f"| {name} | {int(sel.sum())} | {pct(found[sel].mean())} | {pct(direct_ok[sel & found].mean())} | "
                  f"{pct(direct_ok[sel & ~found].mean()) if (sel & ~found).any() else '-'} | false faces {int(r['false_faces'][sel].sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLIT_NAMES), default="val")
    parser.add_argument("--detector", choices=DETECTORS, default=DetectorOptions.detector, help="with its default settings (default: %(default)s)")
    parser.add_argument("--grid", action="store_true", help="score every margin x aspect x shift (val only)")
    parser.add_argument("--margins", type=float, nargs="+", default=[-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    parser.add_argument("--aspects", type=float, nargs="+", default=[1.0, 1.1, 1.2])
    parser.add_argument("--shifts", type=float, nargs="+", default=[-0.05, 0.0, 0.05, 0.1])
    parser.add_argument("--extra-margins", type=float, nargs="*", default=[], help="also score these margins (defaults otherwise)")
    parser.add_argument("--edge-modes", nargs="*", choices=EDGE_MODES, default=[], help="score each geometry with each edge mode")
    parser.add_argument("--placement", choices=("inside", "edge", "cut"), default="inside",
                        help="inside: wholly inside the frame; edge: flush with a frame edge; cut: 5-30%% past one")
    parser.add_argument("--min-side", type=int, default=90)
    parser.add_argument("--max-side", type=int, default=200)
    parser.add_argument("--limit", type=int, default=0, help="a fixed random subset of this many faces (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--precision", default="32-true", help="of both paths (README's figures are float32)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    args = parser.parse_args()
    if args.grid and args.split == "test":
        parser.error("the geometry is chosen on --split val (PublicTest) only; measure the chosen one on test without --grid")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    report(args, run(args))


if __name__ == "__main__":
    main()
