"""Box overlap and the greedy one-to-one matching that detection, face tracks and scoring share."""

import numpy as np

from ferlight.inference.boxes import box_iou, match_boxes


def test_iou_of_every_pair():
    a = np.array([[0, 0, 10, 10], [100, 100, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [[1, 50 / 150, 0], [0, 0, 0]])
    assert box_iou(a, np.zeros((0, 4))).shape == (2, 0)


def test_matching_is_greedy_one_to_one_above_the_threshold():
    a = np.array([[0, 0, 10, 10], [4, 0, 10, 10], [50, 50, 10, 10]])
    b = np.array([[1, 0, 10, 10], [60, 60, 10, 10]])
    # a[0] and a[1] both overlap b[0]; the better pair (a[0], IoU 0.82) wins, a[1] gets nothing
    assert match_boxes(a, b, min_iou=0.3) == {0: 0}
    assert match_boxes(a, b, min_iou=0.9) == {}
    assert match_boxes(a[:0], b, min_iou=0.3) == {}

