"""Scoring live recognition against a clip's truth (ferlight.testing.live_scoring): matching,
missed and false faces, id switches, label flicker."""

import pytest

from ferlight.testing.live_scoring import LiveScore, match, score_clip


def test_matching_takes_best_overlaps_one_to_one():
    truth = [[0, 0, 100, 100], [200, 0, 100, 100]]
    assert match(truth, [[205, 5, 100, 100], [5, 0, 100, 100], [400, 400, 50, 50]]) == {1: 0, 0: 1}
    assert match(truth, []) == {}
    assert match(truth, [[60, 0, 100, 100]]) == {}  # IoU 0.25: not the face


def test_score_counts_misses_false_faces_switches_and_flicker():
    face = {"id": 0, "box": [0, 0, 100, 100], "visible": 1.0}
    partial = {"id": 1, "box": [590, 0, 100, 100], "visible": 0.5}
    truth = {"frames": [[face], [face, partial], [face], [face], []]}

    def detected(track, label, box=(0, 0, 100, 100)):
        return {"box": list(box), "track_id": track, "label": label}

    records = [
        {"faces": [detected(1, "happy")]},  # right
        {"faces": [detected(1, "happy")]},  # right: the partial face may be missed
        {"faces": []},  # missed
        {"faces": [detected(2, "sad"), detected(9, "sad", (300, 300, 80, 80))]},  # a false face; id and label changed
        {"faces": [detected(3, "sad", (590, 0, 100, 100))]},  # a false face
    ]
    score = score_clip(truth, records)
    assert score == LiveScore(frames=5, right_frames=2, faces=4, missed=1, false=2, switches=1, label_changes=1, labelled_frames=2)
    assert score.right_rate == pytest.approx(0.4)
    assert score.flicker_per_100 == pytest.approx(50)
    with pytest.raises(ValueError, match="4 records for 5 frames"):
        score_clip(truth, records[:4])
