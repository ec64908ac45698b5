"""Score live recognition against a clip's ground truth (:mod:`ferlight.testing.live_clips`).

Detections are matched to true faces by box overlap (IoU >= ``MIN_IOU``, best pairs first). Per
frame, a face wholly inside the frame that no detection matches is *missed*; a detection that
matches no face (wholly or partly inside) is *false*; a frame is *right* when it has neither.
A face that stays in view should keep one track id (*switches* count changes between consecutive
frames), and, since no face in the clips changes its expression, every change of its shown
label is *flicker*.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ferlight.inference.boxes import match_boxes

MIN_IOU = 0.3


def match(truth_boxes, detected_boxes, min_iou: float = MIN_IOU) -> dict[int, int]:
    """Greedy one-to-one matching, best overlap first: {truth index: detection index}."""
    return match_boxes(np.asarray(truth_boxes).reshape(-1, 4), np.asarray(detected_boxes).reshape(-1, 4), min_iou)


@dataclass
class LiveScore:
    """Counts over one clip or, added up, over a set of clips."""

    frames: int = 0
    right_frames: int = 0
    faces: int = 0  # faces wholly in view, summed over frames
    missed: int = 0
    false: int = 0
    switches: int = 0
    label_changes: int = 0
    labelled_frames: int = 0  # frame-to-frame steps over which a label change could happen

    def __add__(self, other: LiveScore) -> LiveScore:
        return LiveScore(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def right_rate(self) -> float:
        return self.right_frames / self.frames if self.frames else 0.0

    @property
    def flicker_per_100(self) -> float:
        return 100 * self.label_changes / self.labelled_frames if self.labelled_frames else 0.0


def score_clip(truth: dict, records: list[dict]) -> LiveScore:
    """Score one clip: ``truth`` as :func:`~ferlight.testing.live_clips.read_truth` gives it,
    ``records`` the JSONL records of ``ferlight.live`` (one per frame, in order)."""
    if len(records) != len(truth["frames"]):
        raise ValueError(f"{len(records)} records for {len(truth['frames'])} frames")
    score = LiveScore()
    last: dict[int, tuple] = {}  # truth id -> (track id, label) in the previous frame, while wholly in view
    for true_faces, record in zip(truth["frames"], records):
        detected = record["faces"]
        pairs = match([f["box"] for f in true_faces], [d["box"] for d in detected])
        must = [i for i, f in enumerate(true_faces) if f["visible"] >= 1]
        missed = sum(i not in pairs for i in must)
        false = len(detected) - len(pairs)
        score.frames += 1
        score.faces += len(must)
        score.missed += missed
        score.false += false
        score.right_frames += missed == 0 and false == 0
        seen = {}
        for i in must:
            face_id = true_faces[i]["id"]
            if i not in pairs:
                continue  # a miss; the face is still in view, so its track should carry on after
            d = detected[pairs[i]]
            seen[face_id] = (d.get("track_id"), d.get("label"))
            if face_id in last:
                score.switches += seen[face_id][0] != last[face_id][0]
                score.label_changes += seen[face_id][1] != last[face_id][1]
                score.labelled_frames += 1
        in_view = {true_faces[i]["id"] for i in must}
        last = {k: v for k, v in {**last, **seen}.items() if k in in_view}
    return score
