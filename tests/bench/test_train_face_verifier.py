"""bench/train_face_verifier.py: the mined examples carry the benchmark's verdict on each box, and a
short run writes weights the shipped FaceVerifier loads; missing sets exit with status 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import train_face_verifier as trainer  # noqa: E402

from ferlight.inference.face_verifier import SIDE, FaceVerifier  # noqa: E402
from ferlight.testing.photo_set import make_photo_set, read_truth  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    out = tmp_path_factory.mktemp("photos")
    for name in ("train", "clutter", "busy"):
        make_photo_set(out, name, None, n_photos=10)  # the astronaut only
    return out


def test_mined_faces_and_non_faces(photos):
    crops, labels = trainer.mine(photos / "train", seed=0)
    assert crops.shape == (len(labels), SIDE, SIDE) and crops.dtype == np.uint8
    faces = sum(f["visible"] >= 1 for p in read_truth(photos / "train")["photos"] for f in p["faces"])
    found = int(labels.sum()) // (1 + trainer.JITTERS)
    assert int(labels.sum()) % (1 + trainer.JITTERS) == 0 and faces - 2 <= found <= faces
    assert (labels == 0).sum() >= trainer.RANDOM_BOXES * 5  # random squares, and boxes that find no face
    # A face's crop and a random square's are different things to the eye: their mean crops differ.
    assert np.abs(crops[labels == 1].mean(0) - crops[labels == 0].mean(0)).mean() > 5


def test_a_short_run_writes_weights_the_verifier_loads(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "EPOCHS", 1)
    out = tmp_path / "verifier.pt"
    assert trainer.main(["--photos", str(photos), "--out", str(out)]) == 0
    probabilities = FaceVerifier(out)(np.zeros((100, 100), np.uint8), np.array([[10, 10, 50, 50]]))
    assert probabilities.shape == (1,) and 0 <= probabilities[0] <= 1


def test_missing_sets_exit_2(tmp_path, capsys):
    assert trainer.main(["--photos", str(tmp_path)]) == 2
    assert f"no train set in {tmp_path}" in capsys.readouterr().err
