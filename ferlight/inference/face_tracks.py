"""Faces followed across video frames: each keeps an id, a velocity and smoothed probabilities.

A detection continues the track whose predicted box (its last box moved on at its recent
velocity) it overlaps most; the tracks' predicted boxes also tell the detector where to look
next (:meth:`ferlight.inference.detection.FaceDetector.detect_near`). Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferlight.errors import ConfigError
from ferlight.inference.boxes import match_boxes

# Weight of a face's past probabilities in each frame's (0: no smoothing). On the live benchmark's
# tuning clips, whose faces never change expression, the shown label changed 3.8 times per 100
# frames at 0.6, 2.7 at 0.75 and 1.6 at 0.85; 0.8 keeps a real change of expression visible
# within about 3 frames (when one class's probability moves wholly to another).
SMOOTHING = 0.8
VELOCITY_SMOOTHING = 0.5  # weight of a track's past velocity in each frame's


def check_smoothing(smoothing: float) -> float:
    """``smoothing`` as a float, if it is a number in [0, 1); ConfigError otherwise."""
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise ConfigError(f"smoothing must be in [0, 1), got {smoothing!r}")
    return float(smoothing)


@dataclass
class Track:
    """One face followed across frames: its id, last box, smoothed probabilities, velocity, and
    the frames since it was last seen."""

    id: int
    box: np.ndarray
    probabilities: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, smoothed
    missed: int = 0

    def predicted(self) -> np.ndarray:
        """Where the face should be this frame, had it kept its velocity since it was last seen."""
        x, y, w, h = self.box
        dx, dy = self.velocity * (self.missed + 1)
        return np.array([x + dx, y + dy, w, h])


class FaceTracker:
    """Gives each face an id that persists across frames and smooths its probabilities.

    A detection continues the track whose predicted box it overlaps most (IoU >= ``min_iou``,
    greedy, best pairs first); otherwise it starts a new track. A track unseen for more than
    ``max_missed`` frames is dropped. Probabilities are an exponential moving average:
    ``p = smoothing * p_previous + (1 - smoothing) * p_frame``; ``smoothing=0`` gives raw output.
    """

    def __init__(self, smoothing: float = SMOOTHING, min_iou: float = 0.3, max_missed: int = 10) -> None:
        self.smoothing = check_smoothing(smoothing)
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def predicted_boxes(self) -> np.ndarray:
        """The predicted box of every live track (N x 4)."""
        return np.array([t.predicted() for t in self.tracks]).reshape(-1, 4)

    def update(self, boxes: np.ndarray, probabilities: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Track ids and smoothed probabilities for this frame's detections, in their order."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        matches = match_boxes(boxes, self.predicted_boxes(), self.min_iou)  # detection -> track index
        ids, smoothed = [], np.empty_like(probabilities)
        for det, (box, p) in enumerate(zip(boxes, probabilities)):
            if det in matches:
                track = self.tracks[matches[det]]
                step = (_centre(box) - _centre(track.box)) / (track.missed + 1)
                track.velocity = VELOCITY_SMOOTHING * track.velocity + (1 - VELOCITY_SMOOTHING) * step
                track.box, track.missed = box, 0
                track.probabilities = self.smoothing * track.probabilities + (1 - self.smoothing) * p
            else:
                track = Track(self._next_id, box, p)
                self._next_id += 1
                self.tracks.append(track)
            ids.append(track.id)
            smoothed[det] = track.probabilities
        for track in self.tracks:
            if track.id not in ids:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids, smoothed


def _centre(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2], dtype=np.float64)
