"""The face verifier (ferlight.inference.face_verifier): its crops, and the shipped weights telling
real faces from what is not a face."""

import numpy as np
import pytest

from ferlight.inference.face_verifier import SIDE, FaceVerifier, FaceVerifierNet, standardise, verifier_crops
from ferlight.testing.live_clips import PHOTO_FACES, photo
from ferlight.inference.detection import to_grey


@pytest.fixture(scope="module")
def verifier():
    return FaceVerifier()


def test_crops_are_square_about_the_box_with_edge_pixels_past_the_frame():
    grey = np.zeros((100, 100), np.uint8)
    grey[:, 50:] = 200
    crops = verifier_crops(grey, np.array([[30, 30, 40, 20], [90, 40, 30, 30]]))
    assert crops.shape == (2, SIDE, SIDE) and crops.dtype == np.uint8
    assert crops[0, :, : SIDE // 2 - 2].max() == 0 and crops[0, :, SIDE // 2 + 2 :].min() == 200  # centred on x = 50
    assert crops[1].min() == 200  # past the right edge: its pixels replicated, not zeros
    assert verifier_crops(grey, np.zeros((0, 4))).shape == (0, SIDE, SIDE)


def test_standardised_crops_do_not_depend_on_exposure():
    rng = np.random.default_rng(0)
    crop = rng.integers(40, 120, (1, SIDE, SIDE)).astype(np.uint8)
    brighter = np.clip(crop.astype(int) * 2 + 10, 0, 255).astype(np.uint8)
    assert torch_close(standardise(crop), standardise(brighter))
    flat = standardise(np.full((1, SIDE, SIDE), 90, np.uint8))
    assert float(flat.abs().max()) == 0  # a flat crop is all zeros, not a division by zero


def torch_close(a, b) -> bool:
    return bool((a - b).abs().max() < 1e-3)


def test_net_gives_one_logit_per_crop():
    assert FaceVerifierNet()(standardise(np.zeros((3, SIDE, SIDE), np.uint8))).shape == (3,)


def test_shipped_verifier_tells_real_faces_from_backgrounds(verifier):
    """The astronaut's face (a real photograph, at two sizes) is a face; flat, noisy and textured
    boxes away from it are not."""
    grey = to_grey(photo("astronaut"))
    x, y, w, h = PHOTO_FACES["astronaut"]
    faces = np.array([[x, y, w, h], [x - 0.05 * w, y + 0.05 * h, 1.1 * w, 1.1 * h]])
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (200, 200), dtype=np.uint8)
    assert (verifier(grey, faces) > 0.5).all()
    assert (verifier(grey, np.array([[380, 300, 100, 100], [0, 400, 90, 90]])) < 0.5).all()  # the helmet, the suit's sleeve by the flag
    assert (verifier(noise, np.array([[20, 20, 120, 120]])) < 0.5).all()
    assert verifier(grey, np.zeros((0, 4))).shape == (0,)
