"""Faces found and false on the photo sets for several still-image search settings: detection only,
no emotion, so a sweep over a tuning set takes seconds a setting.

    python bench/sweep_photo_detection.py --photos .cache/photos --sets tune busy \
        --try "" "still_search=(0.75, 1.0)" "face_probability=0.6" "pyramid_step=0.88"

Each ``--try`` is one setting, ``KEY=VALUE`` pairs separated by ``;`` (values are Python literals;
the empty setting is today's default):

- ``min_face``, ``detect_scale``, ``face_probability``, ``verifier_probability``: the MTCNN detector's options
  (:class:`ferlight.inference.detection.DetectorOptions`);
- ``still_search``: ``(scale, share of min_face)`` for a still image (``MtcnnDetector.still_search``);
- ``still_pnet``, ``rescue``, ``rescue_at_most``, ``pyramid_step``: MTCNN's still-image constants
  (:data:`~ferlight.inference.mtcnn.STILL_PNET`, ``RESCUE``, ``RESCUE_AT_MOST``, ``PYRAMID_STEP``), and
  ``still_face_probability`` (:data:`~ferlight.inference.detection.STILL_FACE_PROBABILITY`), set
  on their module for that setting's run and put back after it.

Each photo goes through ``FaceDetector.detect(image, still=True)``, the search that
``python -m ferlight.live`` runs on a folder of photos, and is scored as ``bench/bench_photos.py``
scores it (:func:`bench_photos.outcomes`). Faces cut by the photo's edge count neither way.
Settings are for the tuning sets (``tune``, ``busy``); the held-out set is for ``bench_photos.py``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_photos  # noqa: E402

from ferlight.inference import detection, mtcnn  # noqa: E402
from ferlight.inference.detection import DetectorOptions, create_detector  # noqa: E402
from ferlight.testing.photo_set import read_truth  # noqa: E402

DETECTOR_KEYS = ("min_face", "detect_scale", "face_probability", "verifier_probability")
CONSTANTS = {
    "still_pnet": (mtcnn, "STILL_PNET"),
    "rescue": (mtcnn, "RESCUE"),
    "rescue_at_most": (mtcnn, "RESCUE_AT_MOST"),
    "pyramid_step": (mtcnn, "PYRAMID_STEP"),
    "still_face_probability": (detection, "STILL_FACE_PROBABILITY"),
}


def parse_setting(text: str) -> dict:
    """``"a=1; b=(2, 3)"`` -> ``{"a": 1, "b": (2, 3)}``; unknown keys are an error."""
    setting = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in (*DETECTOR_KEYS, "still_search", *CONSTANTS):
            raise ValueError(f"unknown setting {key!r} in {text!r}")
        setting[key] = ast.literal_eval(value.strip())
    return setting


@contextmanager
def constants(setting: dict):
    """The still search's module constants as ``setting`` says, for the duration of the block."""
    saved = {key: getattr(module, name) for key, (module, name) in CONSTANTS.items()}
    try:
        for key, (module, name) in CONSTANTS.items():
            if key in setting:
                setattr(module, name, setting[key])
        yield
    finally:
        for key, (module, name) in CONSTANTS.items():
            setattr(module, name, saved[key])


def sweep_set(folder: Path, setting: dict) -> dict:
    """One setting over one set's photos: faces to find, found, false (per condition) and ms a photo."""
    truth = read_truth(folder)
    detector = create_detector(DetectorOptions(detector="mtcnn", **{k: setting[k] for k in DETECTOR_KEYS if k in setting}))
    if "still_search" in setting:
        detector.still_search = setting["still_search"]
    images = {photo["image"]: cv2.imread(str(folder / photo["image"])) for photo in truth["photos"]}
    with constants(setting):
        start = time.perf_counter()
        records = {name: [{"box": [int(v) for v in box], "label": None} for box in detector.detect(image, still=True)] for name, image in images.items()}
        ms = (time.perf_counter() - start) * 1000 / len(images)
    faces, false = bench_photos.outcomes(truth, records)
    counts = bench_photos.tally(faces, false)
    return {
        "faces": counts.faces, "found": counts.found, "false": counts.false,
        "false_by_condition": dict(Counter(f["condition"] for f in false)), "ms_per_photo": ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="bench/make_photo_set.py's --out")
    parser.add_argument("--sets", nargs="+", default=["tune", "busy"])
    parser.add_argument("--try", dest="settings", nargs="+", default=[""], help='settings, e.g. "face_probability=0.6; still_pnet=0.4"')
    args = parser.parse_args(argv)
    try:
        settings = [(text, parse_setting(text)) for text in args.settings]
    except (ValueError, SyntaxError) as err:
        print(f"sweep_photo_detection: {err}", file=sys.stderr)
        return 2
    missing = bench_photos.missing_set(args.photos, args.sets)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    print("| setting | set | found | false | false by condition | ms a photo |")
    print("|---|---|---|---|---|---|")
    for text, setting in settings:
        for set_name in args.sets:
            r = sweep_set(args.photos / set_name, setting)
            by_condition = ", ".join(f"{k} {v}" for k, v in sorted(r["false_by_condition"].items())) or "-"
            print(f"| {text or 'default'} | {set_name} | {r['found']}/{r['faces']} ({100 * r['found'] / max(r['faces'], 1):.1f}%) | {r['false']} | {by_condition} | {r['ms_per_photo']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
