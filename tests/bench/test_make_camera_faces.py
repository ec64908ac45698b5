"""bench/make_camera_faces.py: every FER2013 row is kept as it was, and the faces the photo search
finds come after them as Training rows with their own faces' labels."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import make_camera_faces  # noqa: E402

from ferlight.data import load_fer2013  # noqa: E402
from ferlight.data.fer_data import USAGES, FERData  # noqa: E402
from ferlight.data.kaggle_csv import write_fer2013_csv  # noqa: E402
from ferlight.testing.photo_set import read_truth  # noqa: E402

PHOTOS = 12


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory) -> Path:
    """A FER2013-layout file of the 100 real LFW faces scikit-image ships (upscaled to 48 x 48),
    with made-up labels: 80 Training rows and 10 in each test split."""
    lfw = skimage.data.lfw_subset()[:100]
    images = np.stack([cv2.resize((face * 255).astype(np.uint8), (48, 48), interpolation=cv2.INTER_CUBIC) for face in lfw])
    usage = np.array([0] * 80 + [1] * 10 + [2] * 10, np.int8)
    path = tmp_path_factory.mktemp("data") / "fer2013.csv"
    write_fer2013_csv(FERData(images, np.arange(100, dtype=np.int64) % 7, usage), path)
    return path


def test_found_faces_follow_every_original_row_as_training_rows_with_their_labels(real_faces, tmp_path):
    out, photos = tmp_path / "camera.csv.gz", tmp_path / "photos"
    assert make_camera_faces.main(["--data", str(real_faces), "--out", str(out), "--photo-dir", str(photos), "--photos", str(PHOTOS)]) == 0
    original, combined = load_fer2013(real_faces, cache_dir=tmp_path / "cache"), load_fer2013(out, cache_dir=tmp_path / "cache")
    n = len(original.images)
    assert np.array_equal(combined.images[:n], original.images) and np.array_equal(combined.usage[:n], original.usage)
    assert np.array_equal(combined.labels[:n], original.labels)
    labelled = [f for p in read_truth(photos / "train")["photos"] for f in p["faces"] if f["row"] is not None and f["visible"] >= 1]
    assert len(labelled) >= 8 and len(labelled) * 0.6 <= len(combined.images) - n <= len(labelled)
    assert (combined.usage[n:] == USAGES.index("Training")).all()


def test_each_camera_face_is_the_crop_of_its_own_training_face(real_faces, tmp_path):
    from ferlight.inference.recognizer import Recognizer

    data = load_fer2013(real_faces, cache_dir=tmp_path / "cache")
    pool = make_camera_faces.fer_pool(data, make_camera_faces.SET, 0)
    assert {face.row for face in pool} == set(np.flatnonzero(data.usage == USAGES.index("Training")))
    truth = make_camera_faces.make_photo_set(tmp_path, make_camera_faces.SET, pool, PHOTOS)
    crops, rows = make_camera_faces.camera_faces(Recognizer.from_checkpoint(), truth.parent, read_truth(truth.parent))
    assert crops.shape == (len(rows), 48, 48) and crops.dtype == np.uint8 and len(rows) >= 5
    # Each crop looks like its own face (the correlation of their 12 x 12 thumbnails: coarse, as the
    # crop frames the face a little differently than FER2013 does) far more than like the others.
    def thumbnails(images):
        small = np.stack([cv2.resize(image, (12, 12), interpolation=cv2.INTER_AREA) for image in images]).reshape(len(images), -1)
        small = small.astype(np.float64) - small.mean(1, keepdims=True)
        return small / np.linalg.norm(small, axis=1, keepdims=True)

    similarity = thumbnails(crops) @ thumbnails(data.images[rows]).T
    own, others = np.diag(similarity), similarity[~np.eye(len(rows), dtype=bool)]
    assert own.mean() > others.mean() + 0.25
