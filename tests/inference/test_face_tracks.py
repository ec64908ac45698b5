"""Faces followed across frames: ids kept by overlap with where each face should be, lost tracks
dropped, probabilities smoothed per face."""

import numpy as np
import pytest

from ferlight.errors import ConfigError
from ferlight.inference.face_tracks import FaceTracker


def test_tracker_keeps_ids_by_overlap_and_drops_lost_tracks():
    tracker = FaceTracker(smoothing=0.0, max_missed=1)
    p = np.full((2, 3), 1 / 3)
    ids, _ = tracker.update(np.array([[0, 0, 100, 100], [300, 0, 100, 100]]), p)
    assert ids == [1, 2]
    ids, _ = tracker.update(np.array([[310, 5, 100, 100], [10, 5, 100, 100]]), p)
    assert ids == [2, 1]
    ids, _ = tracker.update(np.array([[600, 300, 50, 50]]), p[:1])  # both missed once, a new face
    assert ids == [3]
    ids, _ = tracker.update(np.array([[0, 0, 100, 100]]), p[:1])  # track 1 missed once: still there
    assert ids == [1]
    tracker.update(np.zeros((0, 4)), p[:0])
    ids, _ = tracker.update(np.array([[300, 0, 100, 100]]), p[:1])  # track 2 missed 3 times: gone
    assert ids == [4]


def test_tracker_smooths_probabilities_per_face():
    tracker = FaceTracker(smoothing=0.75)
    box = np.array([[0, 0, 100, 100]])
    first, second = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    _, p1 = tracker.update(box, first)
    _, p2 = tracker.update(box + 3, second)
    np.testing.assert_allclose(p1, first)
    np.testing.assert_allclose(p2, [[0.75, 0.25]])
    _, p3 = tracker.update(np.array([[500, 500, 80, 80]]), second)  # a new face starts unsmoothed
    np.testing.assert_allclose(p3, second)


def test_a_track_is_predicted_to_keep_its_velocity():
    tracker = FaceTracker(smoothing=0.0)
    p = np.full((1, 2), 0.5)
    for step in range(4):
        tracker.update(np.array([[10 * step, 0, 100, 100]]), p)
    # the velocity averages the steps of 10 px a frame, from 0: 5, 7.5, then 8.75 px a frame
    x, y, w, h = tracker.predicted_boxes()[0]
    assert (x, y, w, h) == pytest.approx((38.75, 0, 100, 100))
    tracker.update(np.zeros((0, 4)), p[:0])  # missed once: predicted two steps on
    assert tracker.predicted_boxes()[0][0] == pytest.approx(30 + 2 * 8.75)


@pytest.mark.parametrize("smoothing", [1.0, -0.1, True, "0.5"])
def test_smoothing_outside_0_1_is_refused(smoothing):
    with pytest.raises(ConfigError, match="smoothing must be in"):
        FaceTracker(smoothing)
