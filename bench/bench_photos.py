"""Still photos with ground truth: faces found, missed and false, emotions right, per camera condition
and face size, and images per second; optionally beside the ``fer`` package on the same photos.

    python bench/make_photo_set.py --out .cache/photos                      # once: tune, heldout, busy
    python bench/bench_photos.py --photos .cache/photos [--sets heldout] [--peer] [--out photos.json]

The photos (:mod:`ferlight.testing.photo_set`: FER2013 faces with their labels and the photographs
that packages ship, pasted on natural images under one camera condition each) go through
``python -m ferlight.live``'s path for a folder of images: :meth:`Recognizer.process_video` on
the set's folder (each image read, searched in full, its faces classified, 16 images' faces per
model batch), the Recognizer built by ``Recognizer.from_checkpoint`` with every default (the
shipped model, MTCNN), or with ``--set NAME=VALUE`` overrides (DetectorOptions and
RecognizerOptions fields) to compare settings. ``--peer`` runs the ``fer`` package
(``bench/peer_fer.py --photos``, its own virtual environment: ``FER(mtcnn=False)``, OpenCV's Haar
cascade and its TFLite model) on the same photos, scored alike.

Scoring (:func:`match`, :func:`score_photo`): a detection finds a true face when their boxes
overlap by IoU >= 0.3, or when each box's centre lies inside the other (the same face framed at
another scale: a detector's box on the face inside a padded FER2013 frame, a tilted face); pairs
are made one to one, best IoU first. A face wholly in the photo that no detection finds is
missed; a detection that finds no face is false; a face cut by the photo's edge may be found or
not (neither counts; the ``cut`` row gives how many were found, as if they had to be). Emotion:
of all labelled faces (FER2013 faces wholly in view; a missed face counts as wrong) and of those
found; the photographs count for detection only. ``direct``: the shipped model on the same
faces' own 48 x 48 FER2013 pixels (no detection, no crop; as ``python -m ferlight.evaluate --tta
none``, in the precision the Recognizer runs in), on all labelled faces and on the faces each
system found; the gap (right through the photo minus direct, on the same found faces) comes with
its paired standard error (sqrt(faces right one way only) / faces). Every figure per condition
and per face-size band (a false detection falls in the band of its own box's side).

Speed: wall clock of the recognition over all images of a set (reading the JPEG included, model
and detector loading and one warm-up image not), torch threads ``--torch-threads`` (1, the
command's default), OpenCV's own thread count (the command's default; printed). The machine line
(:func:`ferlight.hardware.machine.summary`) and the 1-minute load average before and after each
system are printed beside the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from ferlight.data.fer_data import CLASS_NAMES
from ferlight.inference.boxes import box_iou
from ferlight.testing.photo_set import CONDITIONS, SIZE_BANDS, TRUTH, band, read_truth

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013_images.u8.xz"
MIN_IOU = 0.3
SYSTEMS = ("ferlight", "fer")
BANDS = tuple(f"{low}-{high}" for low, high in SIZE_BANDS)
# A false detection's own side may fall outside the faces' bands.
ALL_BANDS = (band(SIZE_BANDS[0][0] - 1), *BANDS, band(SIZE_BANDS[-1][1] + 1))


# ---- scoring (pure) ------------------------------------------------------------------------


def _centre_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """N x M: whether the centre of box ``a[i]`` lies inside box ``b[j]``."""
    cx, cy = a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2
    return (
        (cx[:, None] >= b[None, :, 0]) & (cx[:, None] < b[None, :, 0] + b[None, :, 2])
        & (cy[:, None] >= b[None, :, 1]) & (cy[:, None] < b[None, :, 1] + b[None, :, 3])
    )


def match(truth_boxes, detected_boxes, min_iou: float = MIN_IOU) -> dict[int, tuple[int, str]]:
    """Detections to true faces, one to one: {truth index: (detection index, "iou" or "centre")}.

    A pair may match when its IoU is at least ``min_iou`` ("iou") or when each box's centre lies
    inside the other ("centre"); the pairs are taken best IoU first (ties: the nearer centres)."""
    t = np.asarray(truth_boxes, np.float64).reshape(-1, 4)
    d = np.asarray(detected_boxes, np.float64).reshape(-1, 4)
    if not len(t) or not len(d):
        return {}
    iou = box_iou(t, d)
    mutual = _centre_inside(t, d) & _centre_inside(d, t).T
    allowed = (iou >= min_iou) | mutual
    distance = np.hypot(
        (t[:, None, 0] + t[:, None, 2] / 2) - (d[None, :, 0] + d[None, :, 2] / 2),
        (t[:, None, 1] + t[:, None, 3] / 2) - (d[None, :, 1] + d[None, :, 3] / 2),
    )
    pairs: dict[int, tuple[int, str]] = {}
    used: set[int] = set()
    for i, j in sorted(zip(*np.nonzero(allowed)), key=lambda ij: (-iou[ij], distance[ij])):
        if int(i) not in pairs and int(j) not in used:
            pairs[int(i)] = (int(j), "iou" if iou[i, j] >= min_iou else "centre")
            used.add(int(j))
    return pairs


def score_photo(photo: dict, detections: list[dict]) -> tuple[list[dict], list[dict]]:
    """One photo's outcome: per true face (in the truth's order) whether it was found, by which
    rule and with which label; and the false detections (their boxes).

    ``photo``: a record of the set's truth (:func:`ferlight.testing.photo_set.read_truth`);
    ``detections``: ``ferlight.live``'s JSONL faces (``box``, ``label``) for that photo."""
    pairs = match([f["box"] for f in photo["faces"]], [d["box"] for d in detections])
    faces = []
    for i, _ in enumerate(photo["faces"]):
        j, rule = pairs.get(i, (None, None))
        faces.append({"found": j is not None, "rule": rule, "predicted": detections[j]["label"] if j is not None else None})
    matched = {j for j, _ in pairs.values()}
    false = [{"box": list(d["box"])} for j, d in enumerate(detections) if j not in matched]
    return faces, false


def outcomes(truth: dict, records: dict[str, list[dict]], direct: dict[int, int] | None = None) -> tuple[list[dict], list[dict]]:
    """Every face of the set with its outcome, and every false detection, as flat records.

    ``records``: image file name -> detected faces; ``direct``: FER2013 row -> the class the
    model gives its 48 x 48 pixels (None: not measured)."""
    faces, false = [], []
    for photo in truth["photos"]:
        found, wrong = score_photo(photo, records[photo["image"]])
        for index, (face, result) in enumerate(zip(photo["faces"], found)):
            label = face["label"]
            row = face.get("row")
            faces.append({
                "image": photo["image"], "face": index, "condition": face["condition"], "size": face["size"],
                "band": band(face["size"]), "source": face["source"], "visible": face["visible"], "tilt": face["tilt"],
                "frontal": face.get("frontal"), "label": None if label is None else CLASS_NAMES[label], "row": row,
                **result,
                "direct": None if direct is None or row is None else CLASS_NAMES[direct[row]],
            })
        for d in wrong:
            side = max(d["box"][2], d["box"][3])
            false.append({"image": photo["image"], "condition": photo["condition"], "box": d["box"], "band": band(side)})
    return faces, false


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Tally:
    """Counts over a group of faces (and the photos and false detections that go with it)."""

    photos: int = 0
    faces: int = 0  # faces to find
    found: int = 0
    by_centre: int = 0  # found by the centre rule alone (IoU under 0.3)
    false: int = 0
    labelled: int = 0  # FER2013 faces to find
    labelled_found: int = 0
    right: int = 0  # labelled faces found with their label
    direct_right: int = 0  # labelled faces the model gets right on their 48 x 48 pixels
    direct_right_found: int = 0
    live_only: int = 0  # found faces right through the photo, wrong on their own 48 x 48 pixels
    direct_only: int = 0  # and the other way round

    @property
    def missed(self) -> int:
        return self.faces - self.found

    @property
    def right_of_all(self) -> float | None:
        return _share(self.right, self.labelled)

    @property
    def right_of_found(self) -> float | None:
        return _share(self.right, self.labelled_found)

    @property
    def direct_of_all(self) -> float | None:
        return _share(self.direct_right, self.labelled)

    @property
    def direct_of_found(self) -> float | None:
        return _share(self.direct_right_found, self.labelled_found)

    @property
    def gap(self) -> tuple[float, float] | None:
        """Emotion right of the found faces minus direct of the same faces, and its standard
        error (paired: only the faces where the two differ carry it)."""
        n = self.labelled_found
        if not n:
            return None
        return (self.live_only - self.direct_only) / n, (self.live_only + self.direct_only) ** 0.5 / n

    def to_json(self) -> dict:
        rates = ("missed", "right_of_all", "right_of_found", "direct_of_all", "direct_of_found", "gap")
        return {**asdict(self), **{name: getattr(self, name) for name in rates}}


def tally(faces: list[dict], false: list[dict] = (), photos: int = 0, partly: bool = False) -> Tally:
    """Count ``faces`` (:func:`outcomes`' records) to find: those wholly in view, or with ``partly``
    those cut by the edge (as if they had to be found)."""
    t = Tally(photos=photos, false=len(false))
    for f in faces:
        if (f["visible"] < 1) != partly:
            continue
        t.faces += 1
        t.found += f["found"]
        t.by_centre += f["rule"] == "centre"
        if f["label"] is None:
            continue
        t.labelled += 1
        t.labelled_found += f["found"]
        t.right += f["found"] and f["predicted"] == f["label"]
        if f["direct"] is not None:
            t.direct_right += f["direct"] == f["label"]
            t.direct_right_found += f["found"] and f["direct"] == f["label"]
            if f["found"]:
                live, direct = f["predicted"] == f["label"], f["direct"] == f["label"]
                t.live_only += live and not direct
                t.direct_only += direct and not live
    return t


def group_tallies(truth: dict, faces: list[dict], false: list[dict]) -> dict[str, dict[str, Tally]]:
    """Tallies of one system on one set: overall, per condition, per size band, per source and
    per ``frontal`` (whether a frontal Haar cascade finds the FER2013 face on a clean canvas)."""
    photos_of = {c: sum(p["condition"] == c for p in truth["photos"]) for c in CONDITIONS}
    groups: dict[str, dict[str, Tally]] = {"all": {"all": tally(faces, false, len(truth["photos"]))}}
    groups["condition"] = {
        c: tally([f for f in faces if f["condition"] == c], [d for d in false if d["condition"] == c], photos_of[c], partly=c == "cut")
        for c in CONDITIONS
    }
    groups["size"] = {b: tally([f for f in faces if f["band"] == b], [d for d in false if d["band"] == b]) for b in ALL_BANDS}
    groups["source"] = {s: tally([f for f in faces if f["source"] == s]) for s in sorted({f["source"] for f in faces})}
    groups["frontal"] = {
        name: tally([f for f in faces if f["source"] == "fer2013" and f["frontal"] is value])
        for name, value in (("frontal", True), ("not frontal", False))
    }
    return groups


# ---- running -------------------------------------------------------------------------------


def run_ferlight(recognizer, folder: Path) -> tuple[dict[str, list[dict]], dict]:
    """{image name: detected faces} over the set's folder, and the timing."""
    import cv2

    first = min(p for p in folder.iterdir() if p.suffix.lower() == ".jpg")
    recognizer(cv2.imread(str(first)))  # warm-up, not timed
    records, detect_ms, classify_ms = {}, 0.0, 0.0
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for result in recognizer.process_video(folder):
        records[result.name] = [face.to_json() for face in result.faces]
        detect_ms += result.detect_ms
        classify_ms += result.classify_ms
    seconds = time.perf_counter() - start
    n = len(records)
    timing = {
        "images": n, "seconds": round(seconds, 3), "images_per_second": n / seconds, "detect_ms": detect_ms / n,
        "classify_ms": classify_ms / n, "loadavg_1min": {"before": round(load, 2), "after": round(os.getloadavg()[0], 2)},
    }
    return records, timing


def run_peer(photos: Path, set_name: str, workdir: Path) -> tuple[dict[str, list[dict]], dict]:
    """The same for the fer package, run by bench/peer_fer.py --photos in its own environment."""
    only_this_set, out = workdir / "peer_photos", workdir / "peer"
    only_this_set.mkdir()
    (only_this_set / set_name).symlink_to((photos / set_name).resolve())
    load = os.getloadavg()[0]
    script = Path(__file__).with_name("peer_fer.py")
    subprocess.run([sys.executable, str(script), "--photos", str(only_this_set), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    lines = (out / set_name / "photos.jsonl").read_text().splitlines()
    records = {r["image"]: r["faces"] for r in map(json.loads, lines)}
    timing = json.loads((out / set_name / "photos.timing.json").read_text())
    run = json.loads((out / "peer_fer_run.json").read_text())
    return records, {
        "images": timing["images"], "seconds": timing["seconds"], "images_per_second": timing["images"] / timing["seconds"],
        "loadavg_1min": {"before": round(load, 2), "after": round(os.getloadavg()[0], 2)},
        "versions": timing["versions"], "tf_threads": timing["tf_threads"], "cv_threads": timing["cv_threads"], "cpu": run["cpu"],
    }


def direct_predictions(truth: dict, data, data_path: Path, checkpoint, precision: str) -> dict[int, int]:
    """FER2013 row -> the model's class on its own 48 x 48 pixels, for every FER2013 face of the set
    (the pixels checked against the truth's crc32: the same faces the photos hold). ``data``: the
    FERData read from ``data_path``."""
    from ferlight.evaluation.predict import predict_proba
    from ferlight.inference.checkpoint import load_model, resolve_checkpoint

    rows = sorted({f["row"] for p in truth["photos"] for f in p["faces"] if f.get("row") is not None})
    if not rows:
        return {}
    crc = {f["row"]: f["crc32"] for p in truth["photos"] for f in p["faces"] if f.get("row") is not None}
    bad = [r for r in rows if r >= len(data.images) or zlib.crc32(data.images[r].tobytes()) != crc[r]]
    if bad:
        raise SystemExit(f"error: {data_path} is not the FER2013 the photos were made from (row {bad[0]} differs)")
    model = load_model(resolve_checkpoint(checkpoint, None, None))
    predicted = predict_proba([model], data.images[rows], precision=precision).argmax(1)
    return dict(zip(rows, (int(p) for p in predicted)))


# ---- report --------------------------------------------------------------------------------


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pair(values: list[str]) -> str:
    return " / ".join(values)


def points(gap: tuple[float, float] | None) -> str:
    return "-" if gap is None else f"{100 * gap[0]:+.1f} ± {100 * gap[1]:.1f}"


def table(kind: str, tallies: dict[str, dict[str, Tally]], systems: list[str]) -> list[str]:
    """A Markdown table of one grouping (``condition`` or ``size``), a cell per system side by side."""
    names = " / ".join(systems)
    first = {"condition": "condition | photos", "size": "face side (px)"}[kind]
    lines = [
        f"| {first} | faces to find (labelled) | found: {names} | missed: {names} | false: {names} "
        f"| emotion right, all labelled: {names} / direct | emotion right, of found: {names} | direct, of found: {names} "
        f"| gap, of found (paired, ± s.e., points): {names} |",
        "|---" * (9 + (kind == "condition")) + "|",
    ]
    rows = ["all", *tallies[systems[0]][kind]]
    for key in rows:
        ts = [tallies[s]["all"]["all"] if key == "all" else tallies[s][kind][key] for s in systems]
        t0 = ts[0]
        if kind == "size" and key not in BANDS and t0.faces == 0 and all(t.false == 0 for t in ts):
            continue
        label = f"**{key}**" if key == "all" else key
        if key == "cut":
            label = "cut (partly visible: optional)"
        head = f"{label} | {t0.photos}" if kind == "condition" else label
        lines.append(
            f"| {head} | {t0.faces} ({t0.labelled}) | {_pair([pct(t.found / t.faces if t.faces else None) for t in ts])} "
            f"| {_pair([str(t.missed) for t in ts])} | {_pair([str(t.false) for t in ts])} "
            f"| {_pair([pct(t.right_of_all) for t in ts] + [pct(t0.direct_of_all)])} "
            f"| {_pair([pct(t.right_of_found) for t in ts])} | {_pair([pct(t.direct_of_found) for t in ts])} "
            f"| {_pair([points(t.gap) for t in ts])} |"
        )
    return lines


def set_report(set_name: str, truth: dict, tallies: dict[str, dict[str, Tally]], timings: dict[str, dict], systems: list[str]) -> list[str]:
    photos = truth["photos"]
    faces = [f for p in photos for f in p["faces"]]
    lines = [
        f"### {set_name}: {len(photos)} photos, {len(faces)} faces ({sum(f['visible'] >= 1 for f in faces)} to find, "
        f"{sum(f['visible'] >= 1 and f['label'] is not None for f in faces)} of them labelled FER2013 faces from {truth['usage']}; "
        f"{sum(f['visible'] < 1 for f in faces)} cut by the edge; photograph: {truth['photograph']})",
        "",
    ]
    lines += table("condition", tallies, systems) + [""] + table("size", tallies, systems) + [""]
    for s in systems:
        t, src, fr = tallies[s]["all"]["all"], tallies[s]["source"], tallies[s]["frontal"]
        by_source = ", ".join(f"{name} {v.found}/{v.faces}" for name, v in src.items())
        lines.append(
            f"- {s}: found {t.found}/{t.faces} ({pct(t.found / t.faces if t.faces else None)}; {t.by_centre} by the centre rule alone), "
            f"{t.false} false; by source {by_source}; FER2013 faces a frontal cascade finds on a clean canvas "
            f"{fr['frontal'].found}/{fr['frontal'].faces}, the others {fr['not frontal'].found}/{fr['not frontal'].faces}; "
            f"{timings[s]['images_per_second']:.1f} images/s ({timings[s]['images']} images in {timings[s]['seconds']:.1f} s, "
            f"load average {timings[s]['loadavg_1min']['before']} -> {timings[s]['loadavg_1min']['after']})"
        )
    if len(systems) == 2:
        ratio = timings[systems[0]]["images_per_second"] / timings[systems[1]]["images_per_second"]
        lines.append(f"- speed ratio {systems[0]} / {systems[1]}: **{ratio:.2f}x** images/s")
    return lines


def missing_set(photos: Path, set_names: list[str]) -> str | None:
    """The error line for the first of ``set_names`` that has no photo set under ``photos``."""
    for set_name in set_names:
        if not (photos / set_name / TRUTH).exists():
            return f"error: no photo set in {photos / set_name}: run bench/make_photo_set.py first"
    return None


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path(".cache/photos"), help="bench/make_photo_set.py's folder")
    parser.add_argument("--sets", nargs="+", default=["tune", "heldout"])
    parser.add_argument("--checkpoint", help="default: the model shipped with ferlight")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a DetectorOptions or RecognizerOptions field, e.g. min_face=40")
    parser.add_argument("--peer", action="store_true", help="also run the fer package on the same photos (bench/peer_fer.py)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the FER2013 the photos were made from, for the direct accuracy (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON (every face's outcome too)")
    parser.add_argument("--torch-threads", type=int, default=1, help="as the command's default (%(default)s)")
    args = parser.parse_args(argv)
    missing = missing_set(args.photos, args.sets)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    truths = {set_name: read_truth(args.photos / set_name) for set_name in args.sets}

    import cv2
    import torch

    from ferlight.hardware.machine import summary as describe_machine
    from ferlight.inference.recognizer import Recognizer

    torch.set_num_threads(args.torch_threads)
    options = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    recognizer = Recognizer.from_checkpoint(args.checkpoint, **options)
    systems = ["ferlight", "fer"] if args.peer else ["ferlight"]
    command = "python bench/bench_photos.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    machine = describe_machine()
    result = {
        "command": command, "date": date.today().isoformat(), "machine": machine, "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "torch_threads": args.torch_threads, "opencv": cv2.__version__, "cv_threads": cv2.getNumThreads(),
        "options": options, "precision": recognizer.precision.precision, "match": {"min_iou": MIN_IOU, "centre_rule": True}, "sets": {},
    }
    report = []
    has_fer = any(f.get("row") is not None for truth in truths.values() for p in truth["photos"] for f in p["faces"])
    if has_fer:
        from ferlight.data import load_fer2013

        data = load_fer2013(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, truth in truths.items():
            direct = direct_predictions(truth, data, args.data, args.checkpoint, recognizer.precision.precision) if has_fer else {}
            records, timings, tallies, per_face = {}, {}, {}, {}
            records["ferlight"], timings["ferlight"] = run_ferlight(recognizer, args.photos / set_name)
            print(f"{set_name}: ferlight {timings['ferlight']['images_per_second']:.1f} images/s", file=sys.stderr, flush=True)
            if args.peer:
                workdir = Path(tmp) / set_name
                workdir.mkdir()
                records["fer"], timings["fer"] = run_peer(args.photos, set_name, workdir)
                print(f"{set_name}: fer {timings['fer']['images_per_second']:.1f} images/s", file=sys.stderr, flush=True)
            for s in systems:
                faces, false = outcomes(truth, records[s], direct)
                tallies[s] = group_tallies(truth, faces, false)
                per_face[s] = {"faces": faces, "false": false}
            report += set_report(set_name, truth, tallies, timings, systems) + [""]
            result["sets"][set_name] = {
                "photos": len(truth["photos"]), "usage": truth["usage"], "seed": truth["seed"], "timing": timings,
                "tallies": {s: {g: {k: t.to_json() for k, t in ts.items()} for g, ts in tallies[s].items()} for s in systems},
                "outcomes": per_face,
                "detections": records,
            }
    precision = recognizer.precision.line()
    header = [
        f"`{command}`",
        "",
        f"- machine: {machine}; {os.cpu_count()} CPUs; OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads); {date.today().isoformat()}",
        f"- ferlight: the shipped model, {'defaults' if not options else 'defaults but ' + ', '.join(args.set)}; {precision}",
    ]
    if args.peer:
        peer = next(iter(result["sets"].values()))["timing"]["fer"]
        header.append(f"- fer {peer['versions'].get('fer')} (TensorFlow {peer['versions'].get('tensorflow')}, OpenCV {peer['versions'].get('opencv')}, "
                      f"TensorFlow threads {peer['tf_threads']}, OpenCV threads {peer['cv_threads']})")
    print("\n".join(header + [""] + report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
