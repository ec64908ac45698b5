"""The photo benchmark's still photos (ferlight.testing.photo_set): faces where their truth says,
tilted and cut faces, every condition, no face where none is said, the same bytes from the same
seed, and FER2013 faces kept apart between the sets."""

from __future__ import annotations

import cv2
import numpy as np

from ferlight.data.fer_data import USAGES, FERData
from ferlight.testing.live_clips import fer_face
from ferlight.testing.photo_set import (
    CONDITIONS,
    CUT_VISIBLE,
    FerFace,
    PhotoSpec,
    PHOTO_SOURCES,
    PlacedFace,
    background_image,
    band,
    fer_pool,
    make_photo_set,
    place,
    read_truth,
    render_photo,
    rotate_face,
)


def grey_spec(face, corner, size=100, tilt=0.0) -> PhotoSpec:
    spec = PhotoSpec("x.jpg", np.zeros((480, 640, 3), np.uint8), "black")
    spec.faces.append(PlacedFace(face, corner, size, tilt, row=7, pixels=np.full((48, 48), 200, np.uint8)))
    return spec


def test_truth_box_holds_the_pasted_face():
    face = fer_face(np.full((48, 48), 200, np.uint8), 3, 100)
    image, truth = render_photo(grey_spec(face, (50, 60)))
    (record,) = truth["faces"]
    x, y, w, h = record["box"]
    assert (x, y, w, h) == (50 + face.box[0], 60 + face.box[1], 100, 100)
    assert record["visible"] == 1 and record["size"] == 100 and record["label"] == 3 and record["row"] == 7
    assert (image[y : y + h, x : x + w] == 200).all()  # the face, pixel for pixel
    outside = image.copy()
    outside[y - 25 : y + h + 25, x - 25 : x + w + 25] = 0  # the face and its fading padding
    assert not outside.any()


def test_tilted_face_is_centred_in_its_upright_box():
    face = rotate_face(fer_face(np.full((48, 48), 200, np.uint8), 3, 100), 20.0)
    image, truth = render_photo(grey_spec(face, (200, 150), tilt=20.0))
    x, y, w, h = truth["faces"][0]["box"]
    assert (w, h) == (100, 100) and truth["faces"][0]["tilt"] == 20.0
    ys, xs = np.mgrid[0:480, 0:640]
    disc = (xs - (x + 50)) ** 2 + (ys - (y + 50)) ** 2 <= 47**2  # inside the rotated square wherever it turns
    assert (image[disc] >= 199).all()
    corner = image[y : y + 8, x : x + 8]  # a 20-degree turn uncovers the box's corners: padding, fading
    assert corner.mean() < 199


def test_cut_face_runs_past_the_edge_by_the_share_drawn():
    face = fer_face(np.full((48, 48), 200, np.uint8), 3, 120)
    rng = np.random.default_rng(0)
    for edge in range(4):
        _, truth = render_photo(grey_spec(face, place(face, rng, edge), 120))
        visible = truth["faces"][0]["visible"]
        assert CUT_VISIBLE[0] - 0.01 <= visible <= CUT_VISIBLE[1] + 0.01


def test_set_is_deterministic_every_condition_and_faces_as_drawn(tmp_path):
    rng = np.random.default_rng(1)
    pool = [FerFace(rng.integers(0, 256, (48, 48), dtype=np.uint8), i % 7, 100 + i) for i in range(40)]
    first = make_photo_set(tmp_path / "a", "tune", pool, n_photos=len(CONDITIONS), seed=3)
    second = make_photo_set(tmp_path / "b", "tune", pool, n_photos=len(CONDITIONS), seed=3)
    assert first.read_bytes() == second.read_bytes()
    for path in first.parent.glob("*.jpg"):
        assert path.read_bytes() == (second.parent / path.name).read_bytes()
    truth = read_truth(first.parent)
    assert sorted(p["condition"] for p in truth["photos"]) == sorted(CONDITIONS)
    pixels = {f.row: f.pixels for f in pool}
    for photo in truth["photos"]:
        faces = photo["faces"]
        if photo["condition"] == "no-face":
            assert faces == []
            continue
        assert 1 <= len(faces) <= 3 and all(f["condition"] == photo["condition"] for f in faces)
        assert all((f["visible"] < 1) == (photo["condition"] == "cut") for f in faces)
        assert all((f["tilt"] != 0) == (photo["condition"] == "tilt") for f in faces)
        if photo["condition"] not in ("plain", "jpeg"):
            continue
        image = cv2.cvtColor(cv2.imread(str(first.parent / photo["image"])), cv2.COLOR_BGR2GRAY).astype(float)
        for f in faces:
            assert 48 <= f["size"] <= 250 and band(f["size"]) != "<48"
            if f["row"] is None:
                continue
            x, y, w, h = f["box"]
            drawn = cv2.resize(pixels[f["row"]], (w, h), interpolation=cv2.INTER_CUBIC).astype(float)
            assert np.corrcoef(drawn.ravel(), image[y : y + h, x : x + w].ravel())[0, 1] > 0.9  # this face, at this box


def test_pool_keeps_the_sets_apart_and_leaves_out_non_faces(tmp_path):
    a, b, c, d = (np.full((48, 48), v, np.uint8) for v in (10, 20, 30, 40))
    images = np.stack([a, b, d, b, c])  # b is both a PublicTest and a PrivateTest face
    usage = np.array([USAGES.index(u) for u in ("PublicTest",) * 3 + ("PrivateTest",) * 2], np.int8)
    data = FERData(images, np.arange(5, dtype=np.int64) % 7, usage)
    ferplus = tmp_path / "fer2013new.csv"
    ferplus.write_text("Usage,Image name\n" + "".join(f"x,{'' if i == 2 else f'fer{i}.png'}\n" for i in range(5)))  # d: not a face
    assert [f.row for f in fer_pool(data, "tune", 0, ferplus)] == [0]
    assert [f.row for f in fer_pool(data, "heldout", 0, ferplus)] == [4]
    assert sorted(f.row for f in fer_pool(data, "tune", 0)) == [0, 2]  # without FER+: d stays
    assert sorted(f.row for f in fer_pool(data, "busy", 0, ferplus)) == [0]  # tuning side: tune's faces


def test_the_verifier_training_set_holds_training_faces_found_in_no_test_split():
    a, b, c = (np.full((48, 48), v, np.uint8) for v in (10, 20, 30))
    images = np.stack([a, b, c, a])  # a is both a PublicTest and a Training face
    usage = np.array([USAGES.index(u) for u in ("PublicTest", "Training", "Training", "Training")], np.int8)
    data = FERData(images, np.zeros(4, np.int64), usage)
    assert sorted(f.row for f in fer_pool(data, "train", 0)) == [1, 2]
    assert [f.row for f in fer_pool(data, "tune", 0)] == [0]  # the test splits' sets keep their faces
    assert sorted(f.row for f in fer_pool(data, "clutter", 0)) == [1, 2]
    train, clutter, heldout, busy = (PHOTO_SOURCES[name] for name in ("train", "clutter", "heldout", "busy"))
    assert clutter["usage"] == train["usage"] == "Training"
    backgrounds = set(train["backgrounds"]) | set(clutter["backgrounds"])
    assert not backgrounds & (set(heldout["backgrounds"]) | set(busy["backgrounds"]))
    for name in backgrounds:
        image = background_image(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 10


def test_the_busy_set_is_on_the_tuning_side_with_backgrounds_of_its_own():
    busy, tune, heldout = (PHOTO_SOURCES[name] for name in ("busy", "tune", "heldout"))
    assert (busy["usage"], busy["photo"]) == (tune["usage"], tune["photo"])
    assert not set(busy["backgrounds"]) & (set(tune["backgrounds"]) | set(heldout["backgrounds"]))
    for name in busy["backgrounds"]:
        image = background_image(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 10
