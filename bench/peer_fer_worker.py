"""Runs the ``fer`` PyPI package on clips or photos; executed by the python of fer's own venv (see peer_fer.py).

    .venv-fer/bin/python bench/peer_fer_worker.py --clips DIR --out OUTDIR [--threads N]
    .venv-fer/bin/python bench/peer_fer_worker.py --photos DIR --out OUTDIR [--threads N]

For every ``DIR/<set>/<clip>.mp4`` it writes ``OUTDIR/<set>/<clip>.jsonl``, one line per input
frame in ``ferlight.live``'s JSONL schema, and ``OUTDIR/<set>/<clip>.timing.json``. With
``--photos``, for every folder ``DIR/<set>`` of images (.jpg, .jpeg, .png; sorted by name) it
writes ``OUTDIR/<set>/photos.jsonl``, one line per image as ``ferlight.live`` writes it for a
folder (with the image's file name), and ``OUTDIR/<set>/photos.timing.json``. fer runs with
its defaults, as a user gets it: ``FER(mtcnn=False)`` (OpenCV's Haar cascade, scaleFactor 1.1,
minNeighbors 5, min face 50 px; its quantized TFLite emotion model). TensorFlow gets ``--threads``
intra- and inter-op threads; OpenCV's thread count is left at its default.

The timed part of a clip is decoding every frame (cv2.VideoCapture) and ``detect_emotions`` on it;
model loading and one warm-up frame before each clip are not timed, nor is writing the outputs.
Of a folder of photos: reading every image (cv2.imread) and ``detect_emotions`` on it, after one
untimed warm-up call on the first.

This file imports nothing from ferlight, and nothing but the standard library at module level, so
that ferlight's tests can import it without fer, TensorFlow or OpenCV.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# fer's class order (FER._get_labels), which is also ferlight's label order
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EXIT_ERROR = 2
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
PHOTOS = "photos"  # the stem of a photo folder's outputs: photos.jsonl, photos.timing.json


class ClipError(Exception):
    """A clip that cannot be read; reported as one line, exit 2."""


def find_clips(clips_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """(set name, path) of every ``clips_dir/<set>/<clip>.mp4``, sorted."""
    root = Path(clips_dir)
    if not root.is_dir():
        raise ClipError(f"{root}: not a folder")
    clips = [(path.parent.name, path) for path in sorted(root.glob("*/*.mp4"))]
    if not clips:
        raise ClipError(f"{root}: no clips (expected {root}/<set>/<clip>.mp4)")
    return clips


def find_photos(photos_dir: str | os.PathLike) -> list[tuple[str, list[Path]]]:
    """(set name, its images sorted by name) of every folder ``photos_dir/<set>`` holding images."""
    root = Path(photos_dir)
    if not root.is_dir():
        raise ClipError(f"{root}: not a folder")
    sets = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        if images:
            sets.append((folder.name, images))
    if not sets:
        raise ClipError(f"{root}: no photos (expected {root}/<set>/<name>.jpg)")
    return sets


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def face_record(face: dict) -> dict:
    """One fer face (``{'box': [x, y, w, h], 'emotions': {name: p}}``) as a ferlight.live face."""
    probabilities = {name: float(face["emotions"][name]) for name in EMOTIONS if name in face["emotions"]}
    # the first of equal scores wins, like fer's own top_emotion (fer rounds scores to 2 decimals)
    label = max(probabilities, key=probabilities.get) if probabilities else None
    return {
        "box": [int(v) for v in face["box"]],  # fer returns the cascade's numpy int32 box, not squared
        "track_id": None,  # fer has no tracking
        "label": label,
        "probabilities": probabilities,
    }


def frame_record(index: int, faces: list[dict], image: str | None = None) -> dict:
    record = {"frame": index, "timestamp": None}
    if image is not None:  # a photo: ferlight.live names its image
        record["image"] = image
    record["faces"] = [face_record(face) for face in faces]
    return record


def open_clip(path: Path):
    """An opened cv2.VideoCapture whose first frame reads, and that frame; ClipError otherwise."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ClipError(f"{path}: cannot open the video")
    ok, frame = capture.read()
    if not ok or frame is None:
        capture.release()
        raise ClipError(f"{path}: no readable frames")
    return capture, frame


def check_clips(clips: list[tuple[str, Path]]) -> None:
    """Fail before loading any model when a clip has no readable frame."""
    for _, path in clips:
        capture, _ = open_clip(path)
        capture.release()


def run_clip(detector, path: Path) -> tuple[list[dict], float]:
    """JSONL records of every frame of ``path`` and the seconds spent decoding and detecting them.

    ``detector`` is anything with fer's ``detect_emotions(bgr_frame) -> [{'box', 'emotions'}]``.
    One warm-up call on the first frame precedes the timed pass, which reads the clip anew.
    """
    capture, first = open_clip(path)
    capture.release()
    detector.detect_emotions(first)  # warm-up, not timed
    import cv2

    capture = cv2.VideoCapture(str(path))
    results = []
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        results.append(detector.detect_emotions(frame))
    seconds = time.perf_counter() - start
    capture.release()
    if not results:
        raise ClipError(f"{path}: no readable frames")
    return [frame_record(i, faces) for i, faces in enumerate(results)], seconds


def read_photo(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(f"{path}: cannot read the image")
    return image


def run_photos(detector, paths: list[Path]) -> tuple[list[dict], float]:
    """JSONL records of every photo of ``paths`` and the seconds spent reading and detecting them
    (one untimed warm-up call on the first photo before)."""
    detector.detect_emotions(read_photo(paths[0]))  # warm-up, not timed
    results = []
    start = time.perf_counter()
    for path in paths:
        results.append(detector.detect_emotions(read_photo(path)))
    seconds = time.perf_counter() - start
    return [frame_record(i, faces, path.name) for i, (path, faces) in enumerate(zip(paths, results))], seconds


def write_outputs(out_dir: Path, set_name: str, clip: str, records: list[dict], timing: dict) -> Path:
    """Write ``<set>/<clip>.jsonl`` and ``<set>/<clip>.timing.json`` under ``out_dir``."""
    folder = Path(out_dir) / set_name
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"{clip}.jsonl"
    with open(jsonl, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    (folder / f"{clip}.timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    return jsonl


def load_fer(threads: int):
    """fer's FER with its defaults (Haar cascade), TensorFlow limited to ``threads``; and the versions."""
    import cv2
    import numpy
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    try:
        from fer import FER  # fer < 25
    except ImportError:  # fer 25.x's __init__ no longer exports FER
        from fer.fer import FER
    from importlib.metadata import version

    detector = FER(mtcnn=False)
    versions = {
        "fer": version("fer"),
        "tensorflow": tf.__version__,
        "tensorflow_distribution": _tf_distribution(),
        "keras": _version_or_none("keras"),
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    return detector, versions


def _version_or_none(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _tf_distribution() -> str | None:
    for name in ("tensorflow-cpu", "tensorflow"):
        if _version_or_none(name):
            return name
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clips", help="folder of <set>/<clip>.mp4")
    source.add_argument("--photos", help="folder of <set>/<name>.jpg (or .jpeg, .png)")
    parser.add_argument("--out", required=True, help="output folder: <set>/<clip>.jsonl and .timing.json (photos: <set>/photos.*)")
    parser.add_argument("--threads", type=int, default=available_cores(), help="TensorFlow threads (default: the cores available)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def main(argv: list[str] | None = None, detector=None) -> int:
    """Run; ``detector`` replaces fer (tests). Returns the exit status."""
    args = parse_args(argv)
    try:
        if args.photos:
            photo_sets = find_photos(args.photos)
            clips = []
        else:
            clips = find_clips(args.clips)
            check_clips(clips)
            photo_sets = []
        if detector is None:
            detector, versions = load_fer(args.threads)
            # fer builds its TFLite interpreter itself, with TFLite's default thread count
            tf_threads = {"intra_op": args.threads, "inter_op": args.threads, "tflite": "fer's default"}
        else:
            versions, tf_threads = {}, None
        import cv2

        cv_threads = cv2.getNumThreads()
        out = Path(args.out)

        def timing_of(records: list, seconds: float) -> dict:
            n = len(records)
            return {"frames": n, "seconds": round(seconds, 4), "fps": round(n / seconds, 2) if seconds > 0 else None,
                    "tf_threads": tf_threads, "cv_threads": cv_threads,
                    "frames_with_faces": sum(1 for r in records if r["faces"]), "versions": versions}

        for set_name, path in clips:
            records, seconds = run_clip(detector, path)
            n, timing = len(records), timing_of(records, seconds)
            write_outputs(out, set_name, path.stem, records, timing)
            print(f"{set_name}/{path.stem}: {n} frames, {timing['frames_with_faces']} with faces, {timing['fps']} fps", flush=True)
        for set_name, paths in photo_sets:
            records, seconds = run_photos(detector, paths)
            n, timing = len(records), {"images": len(records), **timing_of(records, seconds)}
            write_outputs(out, set_name, PHOTOS, records, timing)
            print(f"{set_name}: {n} photos, {timing['frames_with_faces']} with faces, {timing['fps']} images/s", flush=True)
    except ClipError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
