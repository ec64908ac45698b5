"""The crop geometry of ferlight.inference.crops: margins, aspect, shift, the frame edge, order and count."""

from __future__ import annotations

import numpy as np
import pytest

from ferlight.inference.crops import (
    CROP_ASPECT,
    CROP_EDGE,
    CROP_MARGIN,
    CROP_SHIFT,
    EDGE_MODES,
    crop_box,
    cut,
    face_crops,
)


def gradient(height: int = 100, width: int = 120, channels: int | None = None) -> np.ndarray:
    """An image whose pixel (y, x) holds a value unique to its place (mod 256), to see what was cut."""
    yy, xx = np.mgrid[:height, :width]
    image = ((yy * 7 + xx * 3) % 256).astype(np.uint8)
    return image if channels is None else np.repeat(image[..., None], channels, axis=2)


def test_defaults_are_valid():
    assert CROP_MARGIN > -0.5 and CROP_ASPECT > 0 and CROP_EDGE in EDGE_MODES
    assert isinstance(CROP_SHIFT, float)


def test_zero_margin_is_the_box_itself():
    assert crop_box((10, 20, 30, 30), margin=0, aspect=1, shift=0) == (10, 20, 30, 30)
    image = gradient()
    (crop,) = face_crops(image, [(10, 20, 30, 30)], margin=0, aspect=1, shift=0)
    np.testing.assert_array_equal(crop, image[20:50, 10:40])


@pytest.mark.parametrize("margin, expected", [(0.1, (16, 16, 48, 48)), (0.25, (10, 10, 60, 60)), (-0.25, (30, 30, 20, 20))])
def test_margin_grows_each_side_by_a_fraction_of_the_side(margin, expected):
    assert crop_box((20, 20, 40, 40), margin=margin, aspect=1, shift=0) == expected


def test_aspect_sets_height_over_width_about_the_same_centre():
    x, y, w, h = crop_box((20, 20, 40, 40), margin=0, aspect=1.5, shift=0)
    assert (w, h) == (40, 60)
    assert (x + w / 2, y + h / 2) == (40, 40)
    x, y, w, h = crop_box((20, 20, 40, 40), margin=0.25, aspect=0.5, shift=0)
    assert (w, h) == (60, 30) and (x + w / 2, y + h / 2) == (40, 40)


def test_shift_moves_the_centre_down_by_a_fraction_of_the_side():
    assert crop_box((20, 20, 40, 40), margin=0, aspect=1, shift=0.25) == (20, 30, 40, 40)
    assert crop_box((20, 20, 40, 40), margin=0, aspect=1, shift=-0.1) == (20, 16, 40, 40)


def test_a_non_square_box_uses_its_longer_side_about_its_centre():
    x, y, w, h = crop_box((10, 10, 20, 40), margin=0, aspect=1, shift=0)
    assert (w, h) == (40, 40) and (x + w / 2, y + h / 2) == (20, 30)


def test_tiny_boxes_still_give_a_pixel():
    assert crop_box((5, 5, 1, 1), margin=-0.45, aspect=0.1, shift=0)[2:] == (1, 1)


@pytest.mark.parametrize("bad", [dict(box=(0, 0, 0, 10)), dict(aspect=0), dict(margin=-0.5)])
def test_bad_geometry_is_refused(bad):
    args = dict(box=(0, 0, 10, 10), margin=0, aspect=1, shift=0) | bad
    with pytest.raises(ValueError):
        crop_box(**args)


def test_inside_the_frame_both_edge_modes_give_the_same_view():
    image = gradient()
    for edge in EDGE_MODES:
        crop = cut(image, (5, 6, 30, 40), edge)
        assert np.shares_memory(crop, image)
        np.testing.assert_array_equal(crop, image[6:46, 5:35])


def test_zero_pads_past_the_edge_with_black_to_the_full_size():
    image = gradient(channels=3)
    crop = cut(image, (-10, -5, 40, 30), "zero")
    assert crop.shape == (30, 40, 3)
    np.testing.assert_array_equal(crop[5:, 10:], image[:25, :30])
    assert not crop[:5].any() and not crop[:, :10].any()


@pytest.mark.parametrize("channels", [None, 3])
def test_replicate_pads_past_the_edge_to_the_full_size(channels):
    image = gradient(channels=channels)
    crop = cut(image, (-10, -5, 40, 30), "replicate")
    assert crop.shape[:2] == (30, 40) and crop.shape[2:] == image.shape[2:]
    np.testing.assert_array_equal(crop[5:, 10:], image[:25, :30])  # the part inside, in place
    np.testing.assert_array_equal(crop[:5, 10:], np.broadcast_to(image[0:1, :30], (5,) + image[0:1, :30].shape[1:]))
    np.testing.assert_array_equal(crop[5:, :10], np.repeat(image[:25, 0:1], 10, axis=1))
    # and past the right and bottom edges
    crop = cut(image, (100, 90, 30, 20), "replicate")
    assert crop.shape[:2] == (20, 30)
    np.testing.assert_array_equal(crop[:10, :20], image[90:, 100:])
    np.testing.assert_array_equal(crop[:10, 20:], np.repeat(image[90:, 119:120], 10, axis=1))
    np.testing.assert_array_equal(crop[10:, :20], np.repeat(image[99:100, 100:], 10, axis=0))


def test_clip_keeps_only_the_part_inside_the_frame():
    image = gradient()
    np.testing.assert_array_equal(cut(image, (-10, -5, 40, 30), "clip"), image[:25, :30])
    np.testing.assert_array_equal(cut(image, (100, 90, 30, 20), "clip"), image[90:, 100:])


def test_a_crop_wholly_outside_or_an_unknown_mode_is_refused():
    image = gradient()
    with pytest.raises(ValueError, match="outside"):
        cut(image, (200, 0, 10, 10))
    with pytest.raises(ValueError, match="edge mode"):
        cut(image, (0, 0, 10, 10), "wrap")


def test_one_crop_per_box_in_the_boxes_order():
    image = gradient(channels=3)
    boxes = np.array([[60, 50, 20, 20], [0, 0, 10, 10], [90, 70, 30, 30]])
    crops = face_crops(image, boxes, margin=0, aspect=1, shift=0, edge="clip")
    assert len(crops) == 3
    for crop, (x, y, w, h) in zip(crops, boxes):
        np.testing.assert_array_equal(crop, image[y : y + h, x : x + w])
    assert face_crops(image, np.zeros((0, 4), int)) == []


def test_face_crops_with_a_margin_at_the_frame_edge():
    image = gradient()
    boxes = [(0, 0, 20, 20), (100, 80, 20, 20)]  # both flush with a corner of the frame
    padded = face_crops(image, boxes, margin=0.25, aspect=1, shift=0, edge="replicate")
    assert [c.shape for c in padded] == [(30, 30), (30, 30)]
    np.testing.assert_array_equal(padded[0][5:, 5:], image[:25, :25])
    clipped = face_crops(image, boxes, margin=0.25, aspect=1, shift=0, edge="clip")
    assert [c.shape for c in clipped] == [(25, 25), (25, 25)]
    np.testing.assert_array_equal(clipped[1], image[75:, 95:])


def test_module_defaults_are_used_when_no_geometry_is_given():
    image = gradient()
    box = (30, 30, 40, 40)
    (crop,) = face_crops(image, [box])
    assert crop.shape[:2] == cut(image, crop_box(box), CROP_EDGE).shape[:2]
    x, y, w, h = crop_box(box)
    assert (w, h) == (round(40 * (1 + 2 * CROP_MARGIN)), round(round(40 * (1 + 2 * CROP_MARGIN)) * CROP_ASPECT))

