"""ferlight.testing.textures: each drawn clutter is the same image every time, busy at every scale,
and an unknown name is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ferlight.testing.textures import SIZE, TEXTURES, texture


@pytest.mark.parametrize("name", TEXTURES)
def test_a_texture_is_deterministic_and_busy_at_every_scale(name):
    image = texture(name)
    assert image.shape == (SIZE[1], SIZE[0], 3) and image.dtype == np.uint8
    assert np.array_equal(image, texture(name))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    for side in (16, 64, 256):  # clutter everywhere: most windows of these sides vary
        windows = grey[: grey.shape[0] // side * side, : grey.shape[1] // side * side]
        windows = windows.reshape(grey.shape[0] // side, side, -1, side).transpose(0, 2, 1, 3).reshape(-1, side * side)
        assert np.median(windows.std(1)) > 5, side


def test_textures_differ_and_an_unknown_name_is_refused():
    images = [texture(name).astype(np.float32) for name in TEXTURES]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 20
    with pytest.raises(ValueError, match="unknown texture 'marble'"):
        texture("marble")
