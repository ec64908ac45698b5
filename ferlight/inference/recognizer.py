"""Recognise facial emotions in images and video: the Python API under ``python -m ferlight.live``.

    from ferlight.inference.recognizer import Recognizer
    recognizer = Recognizer.from_checkpoint("best.ckpt")        # or run_id=..., or the shipped model
    for face in recognizer(cv2.imread("photo.jpg")):            # one image, BGR or grey
        print(face.box, face.label, face.probabilities)
    for result in recognizer.process_video("clip.mp4"):         # tracked and smoothed over time
        print(result.index, [(f.track_id, f.label) for f in result.faces])

Each face is found by a detector (:mod:`ferlight.inference.detection`), cropped
(:mod:`ferlight.inference.crops`), turned grey, resized to 48 x 48 and put through
:func:`ferlight.data.preprocess.eval_transform`, the function training uses for evaluation; all
faces of a frame go through the model in one batch. On video, faces keep an id from frame to
frame (overlap with where each face is predicted to be) and their probabilities are smoothed over
time, so labels do not flicker. Needs torch and OpenCV only (no Lightning, no training code).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch

from ferlight.inference.checkpoint import LoadedModel, load_model, resolve_checkpoint
from ferlight.data.preprocess import IMAGE_SIZE, eval_transform
from ferlight.errors import ConfigError, DataError
from ferlight.inference.crops import face_crops
from ferlight.inference.detection import (
    DETECT_SCALE,
    MIN_FACE,
    MIN_NEIGHBORS,
    SCALE_FACTOR,
    FaceDetector,
    HaarDetector,
    box_iou,
    create_detector,
    match_boxes,
    to_grey,
)
from ferlight.hardware.precision import AUTO, autocast, inference_decision
from ferlight.inference.video import Frame, ImageSource, open_source

# Weight of a face's past probabilities in each frame's (0: no smoothing). On the live benchmark's
# tuning clips, whose faces never change expression, the shown label changed 3.8 times per 100
# frames at 0.6, 2.7 at 0.75 and 1.6 at 0.85; 0.8 keeps a real change of expression visible
# within about 3 frames (when one class's probability moves wholly to another).
SMOOTHING = 0.8
DETECT_EVERY = 10  # on video, search the whole frame every 10th frame, near known faces in between
MERGE_IOU = 0.3  # a whole-frame box overlapping a near-search box this much is the same face
VELOCITY_SMOOTHING = 0.5  # weight of a track's past velocity in each frame's


@dataclass(frozen=True)
class Face:
    """A face found in a frame: its box ``(x, y, w, h)`` in pixels, the probability of each class
    (in the model's class order), the most probable class, and its track id (None for a single
    image, where nothing is tracked)."""

    box: tuple[int, int, int, int]
    probabilities: dict[str, float]
    label: str
    track_id: int | None = None

    def to_json(self) -> dict:
        return {
            "box": list(self.box),
            "track_id": self.track_id,
            "label": self.label,
            "probabilities": {name: round(p, 5) for name, p in self.probabilities.items()},
        }


@dataclass
class FrameResult:
    """The faces of one video frame (an empty list when it has none), with the frame itself and the
    time spent detecting and classifying them."""

    index: int
    timestamp: float | None
    image: np.ndarray = field(repr=False)
    faces: list[Face]
    name: str | None = None
    detect_ms: float = 0.0
    classify_ms: float = 0.0

    def to_json(self) -> dict:
        """The JSONL record: frame index, timestamp (seconds), image name (image sources), faces."""
        timestamp = None if self.timestamp is None else round(self.timestamp, 4)
        record = {"frame": self.index, "timestamp": timestamp}
        if self.name is not None:
            record["image"] = self.name
        record["faces"] = [face.to_json() for face in self.faces]
        return record


@dataclass
class _Track:
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

    A detection continues the track whose predicted box (its last box moved on at its recent
    velocity) it overlaps most (IoU >= ``min_iou``, greedy, best pairs first); otherwise it starts
    a new track. A track unseen for more than ``max_missed`` frames is dropped. Probabilities are
    an exponential moving average: ``p = smoothing * p_previous + (1 - smoothing) * p_frame``;
    ``smoothing=0`` gives raw output.
    """

    def __init__(self, smoothing: float = SMOOTHING, min_iou: float = 0.3, max_missed: int = 10) -> None:
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
            raise ConfigError(f"smoothing must be in [0, 1), got {smoothing!r}")
        self.smoothing = float(smoothing)
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[_Track] = []
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
                track = _Track(self._next_id, box, p)
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


def _check_image(image: np.ndarray) -> np.ndarray:
    """A uint8 grey (H x W) or BGR (H x W x 3) view of ``image``; BGRA and H x W x 1 are accepted."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise DataError(f"expected a uint8 numpy image (BGR or grey), got {kind}")
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        return image
    raise DataError(f"expected an image of shape H x W or H x W x 3, got {image.shape}")


class Recognizer:
    """Finds faces with ``detector`` and labels each with ``model``'s emotion probabilities.

    On video (:meth:`process_video`), the whole frame is searched every ``detect_every`` frames,
    and in the frame after one where a face was lost or none was found; in between, each face is
    looked for only near its last box (:meth:`FaceDetector.detect_near`), several times cheaper.
    ``detect_every=1`` searches every frame in full.

    The model is put in eval mode and channels-last memory format (in place). On CPU, a few
    48 x 48 faces run fastest with ``torch.set_num_threads(1)``, as ``python -m ferlight.live``
    sets: more threads gain nothing on such small batches and stall when the CPU is busy.
    """

    def __init__(
        self,
        model: LoadedModel,
        detector: FaceDetector | None = None,
        *,
        smoothing: float = SMOOTHING,
        detect_every: int = DETECT_EVERY,
        precision: str = AUTO,
    ) -> None:
        if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
            raise ConfigError(f"detect_every must be a positive integer, got {detect_every!r}")
        FaceTracker(smoothing)  # validates smoothing now rather than at the first video
        # channels_last: 20-30% faster on CPU for these small conv nets (bench/RESULTS.md).
        self.model = model.model.eval().to(memory_format=torch.channels_last)
        self.class_names = model.class_names
        self.crop_size = model.crop_size
        self.device = next(self.model.parameters()).device
        self.detector = detector or HaarDetector()
        self.smoothing = smoothing
        self.detect_every = detect_every
        shape = (1, 1, self.crop_size, self.crop_size)  # one face: what a camera mostly shows
        self.precision = inference_decision(self.model, self.device, shape, channels_last=True, precision=precision)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike | None = None,
        *,
        run_id: str | None = None,
        tracking_uri: str | None = None,
        device: str | torch.device = "cpu",
        detector: str = "haar",
        detector_model: str | os.PathLike | None = None,
        scale_factor: float = SCALE_FACTOR,
        min_neighbors: int = MIN_NEIGHBORS,
        min_face: int = MIN_FACE,
        detect_scale: float = DETECT_SCALE,
        detect_every: int = DETECT_EVERY,
        smoothing: float = SMOOTHING,
        precision: str = AUTO,
    ) -> Recognizer:
        """Load a ferlight checkpoint (``path``, MLflow ``run_id``, or the shipped default model)
        onto ``device`` and pair it with a ``haar`` or ``yunet`` face detector. ``precision``:
        ``auto`` (bf16 only where it is measurably faster for one face on this machine, see
        :mod:`ferlight.hardware.precision`), ``32-true`` or ``bf16-mixed``."""
        face_detector = create_detector(
            detector,
            detector_model,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            min_face=min_face,
            detect_scale=detect_scale,
        )
        model = load_model(resolve_checkpoint(path, run_id, tracking_uri), device)
        return cls(model, face_detector, smoothing=smoothing, detect_every=detect_every, precision=precision)

    @torch.inference_mode()
    def classify(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities (N x classes) for face crops of any size, BGR or grey, in one batch."""
        if not len(faces):
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        grey = [to_grey(_check_image(face)) for face in faces]
        batch = np.stack([cv2.resize(f, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA) for f in grey])
        x = eval_transform(torch.from_numpy(batch).to(self.device), self.crop_size)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision.dtype):
            logits = self.model(x)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces in one BGR or grey image (whole-image search, no tracking, no smoothing)."""
        image = _check_image(image)
        boxes = self.detector.detect(image)
        return self._faces(boxes, self.classify(face_crops(image, boxes)), [None] * len(boxes))

    def process_video(
        self, source: int | str | os.PathLike | Iterable[np.ndarray | Frame], max_frames: int | None = None
    ) -> Iterator[FrameResult]:
        """Results for each frame of ``source``, faces tracked and smoothed across frames.

        ``source``: anything :func:`ferlight.inference.video.open_source` opens (camera index, video file,
        URL, image sequence, image file, folder of images), or an iterable of numpy images or
        Frames. The images of a folder are unrelated photos: each is searched in full and
        nothing is tracked or smoothed across them.
        """
        if isinstance(source, (int, str, os.PathLike)):
            source = open_source(source)
        photos = isinstance(source, ImageSource)
        tracker = FaceTracker(self.smoothing)
        since_full_search = self.detect_every
        for count, frame in enumerate(source):
            if max_frames is not None and count >= max_frames:
                break
            if not isinstance(frame, Frame):
                frame = Frame(count, None, frame)
            image = _check_image(frame.image)
            start = time.perf_counter()
            if photos:
                boxes = self.detector.detect(image)
            else:
                boxes, since_full_search = self._find(image, tracker, since_full_search)
            detected = time.perf_counter()
            probabilities = self.classify(face_crops(image, boxes))
            classified = time.perf_counter()
            if photos:
                ids = [None] * len(boxes)
            else:
                ids, probabilities = tracker.update(boxes, probabilities)
            yield FrameResult(
                index=frame.index,
                timestamp=frame.timestamp,
                image=image,
                faces=self._faces(boxes, probabilities, ids),
                name=frame.name,
                detect_ms=(detected - start) * 1000,
                classify_ms=(classified - detected) * 1000,
            )

    def _find(self, image: np.ndarray, tracker: FaceTracker, since_full_search: int) -> tuple[np.ndarray, int]:
        """This frame's faces, and the frames since the last whole-frame search.

        Every tracked face is looked for near where it should be. The whole frame is searched too
        while no face is tracked, every ``detect_every`` frames (for faces that came into view),
        and at once when a face seen in the last frame is not found near its box (it moved fast,
        or grew). A face found both ways counts once, with its near-search box.
        """
        if not tracker.tracks:
            return self.detector.detect(image), 1
        near = np.rint(self.detector.detect_near(image, tracker.predicted_boxes())).astype(int).reshape(-1, 4)
        fresh = sum(t.missed == 0 for t in tracker.tracks)
        if since_full_search < self.detect_every and len(near) >= fresh:
            return near, since_full_search + 1
        full = self.detector.detect(image)
        if len(near) and len(full):
            full = full[box_iou(full, near).max(axis=1) < MERGE_IOU]
        return np.concatenate([near, full]).astype(int), 1

    def _faces(self, boxes: np.ndarray, probabilities: np.ndarray, ids: Sequence[int | None]) -> list[Face]:
        faces = []
        for box, p, track_id in zip(boxes, probabilities, ids):
            named = {name: float(v) for name, v in zip(self.class_names, p)}
            faces.append(Face(tuple(int(v) for v in box), named, self.class_names[int(np.argmax(p))], track_id))
        return faces
