"""bench/bench_photos.py: the scoring rules on hand-made detections (no model), fer's worker on a
folder of photos (a fake detector for fer), and one slow end-to-end run on a tiny generated set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import bench_photos as bench  # noqa: E402
import peer_fer_worker as worker  # noqa: E402

FACE = [100, 100, 100, 100]


def test_match_by_overlap_or_by_both_centres_one_to_one():
    assert bench.match([FACE], [[105, 105, 90, 90]]) == {0: (0, "iou")}
    assert bench.match([FACE], [[130, 130, 40, 40]]) == {0: (0, "centre")}  # IoU 0.16, each centre in the other
    assert bench.match([FACE], [[150, 150, 100, 100]]) == {}  # IoU 0.14, its centre on the face's far corner
    assert bench.match([FACE], [[0, 0, 400, 400]]) == {}  # holds the face, but its centre is not in the face
    assert bench.match([FACE], [[130, 130, 40, 40], [102, 98, 100, 100]]) == {0: (1, "iou")}  # the better box wins
    assert bench.match([FACE, [300, 100, 100, 100]], [[110, 100, 100, 100]]) == {0: (0, "iou")}
    assert bench.match([], [FACE]) == {} and bench.match([FACE], []) == {}


def photo(name, condition, faces):
    defaults = {"visible": 1.0, "size": 100, "tilt": 0.0, "condition": condition, "label": None, "source": "fer2013", "row": None, "frontal": True}
    return {"image": name, "condition": condition, "faces": [{**defaults, **f} for f in faces]}


TRUTH = {
    "photos": [
        photo("a.jpg", "plain", [
            {"box": FACE, "label": 3, "row": 1},  # found, right label; direct right
            {"box": [300, 100, 60, 60], "label": 4, "row": 2, "size": 60},  # missed; direct right
            {"box": [500, 100, 200, 200], "label": 0, "row": 3, "size": 200},  # found, wrong label; direct wrong
            {"box": [100, 300, 150, 150], "source": "astronaut", "size": 150, "frontal": None},  # found: detection only
        ]),
        photo("b.jpg", "cut", [{"box": [-50, 0, 100, 100], "visible": 0.5, "label": 5, "row": 4}]),  # found, though it need not be
        photo("c.jpg", "cut", [{"box": [600, 0, 100, 100], "visible": 0.4, "label": 5, "row": 5}]),  # not found: no miss
        photo("d.jpg", "no-face", []),
    ]
}
DETECTIONS = {
    "a.jpg": [
        {"box": [102, 104, 98, 96], "label": "happy"},
        {"box": [510, 110, 180, 180], "label": "sad"},
        {"box": [110, 310, 130, 130], "label": "neutral"},
        {"box": [400, 400, 50, 50], "label": "fear"},  # false
    ],
    "b.jpg": [{"box": [0, 0, 45, 90], "label": "surprise"}],
    "c.jpg": [],
    "d.jpg": [{"box": [10, 10, 60, 60], "label": "angry"}, {"box": [300, 300, 30, 30], "label": "angry"}],  # false, false
}
DIRECT = {1: 3, 2: 4, 3: 6, 4: 5, 5: 1}


def test_found_missed_false_and_emotions_counted():
    faces, false = bench.outcomes(TRUTH, DETECTIONS, DIRECT)
    assert [f["found"] for f in faces] == [True, False, True, True, True, False]
    assert [f["predicted"] for f in faces] == ["happy", None, "sad", "neutral", "surprise", None]
    assert [f["direct"] for f in faces] == ["happy", "sad", "neutral", None, "surprise", "disgust"]
    assert [d["condition"] for d in false] == ["plain", "no-face", "no-face"]
    assert [d["band"] for d in false] == ["48-99", "48-99", "<48"]
    t = bench.tally(faces, false, photos=4)
    assert (t.faces, t.found, t.missed, t.false) == (4, 3, 1, 3)  # the cut faces count neither way
    assert (t.labelled, t.labelled_found, t.right) == (3, 2, 1)
    assert t.right_of_all == pytest.approx(1 / 3) and t.right_of_found == pytest.approx(1 / 2)
    assert t.direct_of_all == pytest.approx(2 / 3) and t.direct_of_found == pytest.approx(1 / 2)
    assert (t.live_only, t.direct_only) == (0, 0)  # the found faces: right both ways, wrong both ways
    assert t.gap == (0.0, 0.0)
    cut = bench.tally(faces, partly=True)
    assert (cut.faces, cut.found, cut.right, cut.labelled) == (2, 1, 1, 2)
    faces[2]["direct"] = "angry"  # now right on its pixels, wrong through the photo
    t = bench.tally(faces)
    assert (t.live_only, t.direct_only) == (0, 1) and t.gap == pytest.approx((-1 / 2, 1 / 2))


def test_tallies_per_condition_and_size_band():
    faces, false = bench.outcomes(TRUTH, DETECTIONS, DIRECT)
    groups = bench.group_tallies(TRUTH, faces, false)
    plain, cut, none = (groups["condition"][c] for c in ("plain", "cut", "no-face"))
    assert (plain.photos, plain.faces, plain.found, plain.false) == (1, 4, 3, 1)
    assert (cut.photos, cut.faces, cut.found, cut.false) == (2, 2, 1, 0)  # the partly visible faces, as if required
    assert (none.photos, none.faces, none.false) == (1, 0, 2)
    sizes = groups["size"]
    assert (sizes["48-99"].faces, sizes["48-99"].found, sizes["48-99"].false) == (1, 0, 2)
    assert (sizes["100-149"].faces, sizes["100-149"].right) == (1, 1)
    assert (sizes["200-250"].faces, sizes["200-250"].right, sizes["<48"].false) == (1, 0, 1)
    assert groups["source"]["astronaut"].found == 1 and groups["source"]["astronaut"].labelled == 0
    assert groups["frontal"]["frontal"].faces == 3
    lines = bench.table("condition", {"ferlight": groups, "fer": groups}, ["ferlight", "fer"])
    assert lines[2].startswith("| **all** | 4 | 4 (3) | 75.0% / 75.0% | 1 / 1 | 3 / 3 | 33.3% / 33.3% / 66.7% |")
    other = bench.group_tallies(TRUTH, faces, [])  # a system with no false detection: no "<48" box of its own
    lines = bench.table("size", {"ferlight": groups, "fer": other}, ["ferlight", "fer"])
    assert [line.split(" |")[0] for line in lines[3:]] == ["| <48", "| 48-99", "| 100-149", "| 150-199", "| 200-250"]


class FakeFer:
    def detect_emotions(self, image):
        assert image.shape == (48, 64, 3)
        if image.mean() < 100:
            return []
        return [{"box": np.array([1, 2, 30, 31], np.int32), "emotions": dict.fromkeys(worker.EMOTIONS, 0.0) | {"happy": 0.9}}]


def test_peer_worker_on_a_folder_of_photos(tmp_path):
    (tmp_path / "photos" / "tune").mkdir(parents=True)
    for name, value in (("0001-plain.jpg", 200), ("0000-no-face.jpg", 0)):
        cv2.imwrite(str(tmp_path / "photos" / "tune" / name), np.full((48, 64, 3), value, np.uint8))
    (tmp_path / "photos" / "tune" / "truth.json").write_text("{}")
    out = tmp_path / "out"
    assert worker.main(["--photos", str(tmp_path / "photos"), "--out", str(out)], detector=FakeFer()) == 0
    records = [json.loads(line) for line in (out / "tune" / "photos.jsonl").read_text().splitlines()]
    assert [r["image"] for r in records] == ["0000-no-face.jpg", "0001-plain.jpg"]  # sorted, truth.json left alone
    assert list(records[1]) == ["frame", "timestamp", "image", "faces"]  # as ferlight.live writes a folder's
    assert records[0]["faces"] == [] and records[1]["faces"][0]["box"] == [1, 2, 30, 31] and records[1]["faces"][0]["label"] == "happy"
    timing = json.loads((out / "tune" / "photos.timing.json").read_text())
    assert timing["images"] == 2 and timing["frames_with_faces"] == 1


@pytest.mark.slow
def test_end_to_end_on_a_tiny_set(tmp_path, tiny_csv):
    photos, out = tmp_path / "photos", tmp_path / "result.json"
    run = lambda script, *args: subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], cwd=ROOT, capture_output=True, text=True)  # noqa: E731
    made = run("make_photo_set.py", "--out", photos, "--data", tiny_csv, "--photos", 12, "--sets", "tune")
    assert made.returncode == 0, made.stderr
    result = run("bench_photos.py", "--photos", photos, "--sets", "tune", "--data", tiny_csv, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "| **all** | 12 |" in result.stdout and "| no-face | " in result.stdout and "images/s" in result.stdout
    report = json.loads(out.read_text())
    tune = report["sets"]["tune"]
    truth = json.loads((photos / "tune" / "truth.json").read_text())
    faces = [f for p in truth["photos"] for f in p["faces"]]
    total = tune["tallies"]["ferlight"]["all"]["all"]
    assert total["faces"] == sum(f["visible"] >= 1 for f in faces) and 0 <= total["found"] <= total["faces"]
    assert total["labelled"] == sum(f["visible"] >= 1 and f["label"] is not None for f in faces)
    assert len(tune["outcomes"]["ferlight"]["faces"]) == len(faces) and tune["timing"]["ferlight"]["images"] == 12
    assert all(f["direct"] is not None for f in tune["outcomes"]["ferlight"]["faces"] if f["row"] is not None)
    assert "machine" in report and report["precision"]
