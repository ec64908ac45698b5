"""Recognise facial emotions in images and video: the Python API under ``python -m ferlight.live``.

    from ferlight.inference.recognizer import Recognizer
    recognizer = Recognizer.from_checkpoint("best.ckpt")        # or run_id=..., or the shipped model
    for face in recognizer(cv2.imread("photo.jpg")):            # one image, BGR or grey
        print(face.box, face.label, face.probabilities)
    for faces in recognizer.recognize_batch(images):            # several photos, one model batch
        print(len(faces))
    for result in recognizer.process_video("clip.mp4"):         # tracked and smoothed over time
        print(result.index, [(f.track_id, f.label) for f in result.faces])

Each face is found by a detector (:mod:`ferlight.inference.detection`), cropped
(:mod:`ferlight.inference.crops`), turned grey, resized to 48 x 48, normalised as training's
evaluation does, and given its probabilities by
:func:`ferlight.evaluation.predict.tta_probabilities` (the centre crop the model was trained on,
softmax), as ``python -m ferlight.evaluate`` gives them; all faces of a frame go through the
model in one batch, and all faces of several photos (:meth:`Recognizer.recognize_batch`, a folder
of images) too. On video, faces are followed from frame to frame
(:mod:`ferlight.inference.face_tracks`) and their probabilities are smoothed over time, so labels
do not flicker. Needs torch and OpenCV only (no Lightning, no training code).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Literal, Sequence

import cv2
import numpy as np
import torch

from ferlight.data.preprocess import IMAGE_SIZE, normalize
from ferlight.errors import ConfigError, DataError
from ferlight.evaluation.predict import tta_probabilities
from ferlight.hardware.precision import AUTO, autocast, inference_decision
from ferlight.inference.boxes import box_iou
from ferlight.inference.checkpoint import load_model, resolve_checkpoint
from ferlight.inference.crops import face_crops
from ferlight.inference.detection import DetectorOptions, FaceDetector, create_detector, even_exposure, to_grey
from ferlight.inference.face_tracks import SMOOTHING, FaceTracker, Track, check_smoothing
from ferlight.inference.video import Frame, ImageSource, open_source
from ferlight.models import LoadedModel
from ferlight.options import INFERENCE_PRECISIONS, check_choice, option

DETECT_EVERY = 10  # on video, search the whole frame every 10th frame, near known faces in between
# ... and near known faces every other frame, while each was found in the last frame and moves
# under STEADY_SPEED of its side a frame; in between they keep their predicted box. On the live
# benchmark's tuning clips (24): 2,140 of 2,160 frames right and 5 false faces, as when searching
# every frame, at 1.2x its frame rate (bench/RESULTS.md). Skipping also the frame right after a
# whole-frame search (new tracks, no velocity yet): 2,137 and 9 (with no speed limit: 2,135, 11).
NEAR_EVERY = 2
STEADY_SPEED = 0.03
MERGE_IOU = 0.3  # a whole-frame box overlapping a near-search box this much is the same face
IMAGES_PER_BATCH = 16  # photos of a folder whose faces go through the model together
# Photos searched at once, each on its own thread (MTCNN's torch and OpenCV calls release the GIL;
# detectors that are not thread-safe search one at a time). On the photo benchmark's tuning set, 2
# cores: 51.3 against 37.6 images/s with native bf16, 38.4 against 31.4 with oneDNN capped at AVX2
# (bench/RESULTS.md, "Photos").
PHOTO_WORKERS = 2
# Still images: each face and its mirror image go through the model and their probabilities are
# averaged (the model was trained with random flips). On the photo benchmark's tuning set
# (bench/RESULTS.md, "Photos") this got 64.4% of the found faces' emotions right against 61.5% for
# the face alone; on video the one view is kept (its frame rate, and smoothing over frames).
PHOTO_TTA_MODES = ("none", "flip")
PHOTO_TTA = "flip"
# Still images: searched harder than a video frame's whole-frame search (exposure evened out, and
# MTCNN's still-image stages: ferlight.inference.mtcnn.STILL_PNET and RESCUE, at full size:
# FaceDetector.still_search), since no later frame finds a face missed there; "frame" searches them
# as a video frame. Chosen on the photo benchmark's tuning sets (bench/RESULTS.md, "Photos").
PHOTO_SEARCHES = ("still", "frame")
PHOTO_SEARCH = "still"
# Still images: each face crop's exposure evened out before the model (ferlight.inference.detection
# .even_exposure: a gamma to mid-grey where the crop's mean grey is outside CROP_EXPOSURE), as the
# detector's search does for the whole photo. On the photo benchmark's two tuning sets
# (bench/RESULTS.md, "Photos: a face verifier") 763 of 1,187 found faces' emotions right against
# 756 with the crops as they are, and 759 with the detector's narrower band (0.45, 0.55).
PHOTO_EXPOSURES = ("even", "none")
PHOTO_EXPOSURE = "even"
CROP_EXPOSURE = (0.25, 0.75)
_DETECTOR_FIELDS = tuple(f.name for f in dataclasses.fields(DetectorOptions))


@dataclass(frozen=True)
class RecognizerOptions:
    """How the Recognizer follows faces on video and in which precision it runs its model."""

    detect_every: int = option(DETECT_EVERY, "search the whole frame every N frames, near known faces in between (1: always in full)")
    near_every: int = option(NEAR_EVERY, "look for known faces near their boxes every N frames; in between, steady faces keep their predicted box (1: every frame)")
    smoothing: float = option(SMOOTHING, "weight of a face's past probabilities, in [0, 1) (0: raw per-frame output)")
    precision: Literal[INFERENCE_PRECISIONS] = option(
        AUTO, "auto (bf16 only where measured faster for one face on this machine), or as named"
    )
    photo_workers: int = option(PHOTO_WORKERS, "still images searched for faces at once, one thread each")
    photo_search: Literal[PHOTO_SEARCHES] = option(
        PHOTO_SEARCH, "still images: still (exposure evened out, more face candidates kept, full size) or frame (as a video frame's search)"
    )
    photo_tta: Literal[PHOTO_TTA_MODES] = option(
        PHOTO_TTA, "still images: flip (each face and its mirror, probabilities averaged) or none; video frames take one view"
    )
    photo_exposure: Literal[PHOTO_EXPOSURES] = option(
        PHOTO_EXPOSURE, "still images: even (each face crop's exposure brought to mid-grey before the model) or none"
    )

    def __post_init__(self) -> None:
        for name in ("detect_every", "near_every", "photo_workers"):
            every = getattr(self, name)
            if isinstance(every, bool) or not isinstance(every, int) or every < 1:
                raise ConfigError(f"{name} must be a positive integer, got {every!r}")
        check_smoothing(self.smoothing)
        check_choice("photo_tta", self.photo_tta, PHOTO_TTA_MODES)
        check_choice("photo_search", self.photo_search, PHOTO_SEARCHES)
        check_choice("photo_exposure", self.photo_exposure, PHOTO_EXPOSURES)


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
    time spent detecting and classifying them (for photos classified in one batch, an equal share
    of the batch's time)."""

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

    def __init__(self, model: LoadedModel, detector: FaceDetector | None = None, **options) -> None:
        """``detector``: default MTCNN with its tuned settings; ``options``: the fields of
        :class:`RecognizerOptions` (``detect_every``, ``smoothing``, ``precision``, ``photo_tta``)."""
        options = RecognizerOptions(**options)
        # channels_last: 20-30% faster on CPU for these small conv nets (bench/RESULTS.md).
        self.model = model.model.eval().to(memory_format=torch.channels_last)
        self.class_names = model.class_names
        self.crop_size = model.crop_size
        self.device = next(self.model.parameters()).device
        self.detector = detector or create_detector()
        self.smoothing = options.smoothing
        self.detect_every = options.detect_every
        self.near_every = options.near_every
        # OpenCV's cascade and YuNet objects hold per-call state: those detectors search one photo at a time.
        self.photo_workers = options.photo_workers if self.detector.thread_safe else 1
        self.photo_tta = options.photo_tta
        self.photo_exposure = options.photo_exposure
        self.photo_search = options.photo_search
        shape = (1, 1, self.crop_size, self.crop_size)  # one face: what a camera mostly shows
        self.precision = inference_decision(self.model, self.device, shape, channels_last=True, precision=options.precision)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike | None = None,
        *,
        run_id: str | None = None,
        tracking_uri: str | None = None,
        device: str | torch.device = "cpu",
        **options,
    ) -> Recognizer:
        """Load a ferlight checkpoint (``path``, MLflow ``run_id``, or the shipped default model)
        onto ``device`` and pair it with a face detector.

        ``options``: the fields of :class:`~ferlight.inference.detection.DetectorOptions` (which
        detector, ``mtcnn``, ``haar`` or ``yunet``, and how it searches) and of :class:`RecognizerOptions`
        (``detect_every``, ``smoothing``, and ``precision``: ``auto``, bf16 only where it is
        measurably faster for one face on this machine, see :mod:`ferlight.hardware.precision`).
        """
        detection = {name: options.pop(name) for name in _DETECTOR_FIELDS if name in options}
        detector = create_detector(DetectorOptions(**detection))
        model = load_model(resolve_checkpoint(path, run_id, tracking_uri), device)
        return cls(model, detector, **options)

    @torch.inference_mode()
    def classify(self, faces: Sequence[np.ndarray], tta: str = "none") -> np.ndarray:
        """Probabilities (N x classes) for face crops of any size, BGR or grey, in one batch;
        ``tta="flip"`` averages each face's with its mirror image's."""
        check_choice("test-time augmentation", tta, PHOTO_TTA_MODES)
        if not len(faces):
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        x = normalize(torch.from_numpy(model_inputs(faces)).to(self.device))
        with autocast(self.device, self.precision.dtype):
            probabilities = tta_probabilities(self.model, x, tta, self.crop_size)
        return probabilities.cpu().numpy()

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces in one BGR or grey image (whole-image search, no tracking, no smoothing)."""
        return self.recognize_batch([image])[0]

    def recognize_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """The faces in each of several unrelated BGR or grey images, as ``recognizer(image)`` finds
        them: each image is searched on its own, and the faces of all of them go through the model
        in one batch (pass a few dozen images at a time: the batch holds all their faces)."""
        with ThreadPoolExecutor(self.photo_workers) as pool:
            return [result.faces for result in self._photos(self._search([Frame(i, None, image) for i, image in enumerate(images)], pool))]

    def process_video(
        self,
        source: int | str | os.PathLike | Iterable[np.ndarray | Frame],
        max_frames: int | None = None,
        images_per_batch: int = IMAGES_PER_BATCH,
    ) -> Iterator[FrameResult]:
        """Results for each frame of ``source``, faces tracked and smoothed across frames.

        ``source``: anything :func:`ferlight.inference.video.open_source` opens (camera index, video file,
        URL, image sequence, image file, folder of images), or an iterable of numpy images or
        Frames. The images of a folder are unrelated photos: each is searched in full, nothing is
        tracked or smoothed across them, and the faces of ``images_per_batch`` of them at a time
        go through the model in one batch (:meth:`recognize_batch`).
        """
        if images_per_batch < 1:
            raise ConfigError(f"images_per_batch must be at least 1, got {images_per_batch}")
        if isinstance(source, (int, str, os.PathLike)):
            source = open_source(source)
        frames = (
            frame if isinstance(frame, Frame) else Frame(count, None, frame)
            for count, frame in enumerate(itertools.islice(source, max_frames))
        )
        if isinstance(source, ImageSource):
            # The next photos are read and searched while this batch's faces go through the model.
            with ThreadPoolExecutor(self.photo_workers) as pool:
                searching = self._search(list(itertools.islice(frames, images_per_batch)), pool)
                while searching:
                    following = self._search(list(itertools.islice(frames, images_per_batch)), pool)
                    yield from self._photos(searching)
                    searching = following
            return
        tracker = FaceTracker(self.smoothing)
        since_full_search = self.detect_every
        for frame in frames:
            image = _check_image(frame.image)
            start = time.perf_counter()
            boxes, since_full_search = self._find(image, tracker, since_full_search)
            detected = time.perf_counter()
            probabilities = self.classify(face_crops(image, boxes))
            classified = time.perf_counter()
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

    def _search(self, frames: Sequence[Frame], pool: ThreadPoolExecutor) -> list[tuple[Frame, np.ndarray, Future]]:
        """Each photo's whole-image search, started on ``pool``'s threads: (frame, image, search)."""
        return [(frame, image, pool.submit(self._timed_detect, image)) for frame, image in ((f, _check_image(f.image)) for f in frames)]

    def _photos(self, searches: Sequence[tuple[Frame, np.ndarray, Future]]) -> list[FrameResult]:
        """The results of unrelated photos, once their searches (:meth:`_search`) end: all their
        faces in one batch."""
        frames, images, running = zip(*searches) if searches else ((), (), ())
        boxes, detect_ms = zip(*(search.result() for search in running)) if running else ((), ())
        start = time.perf_counter()
        crops = [crop for image, found in zip(images, boxes) for crop in self.photo_crops(image, found)]
        probabilities = self.classify(crops, self.photo_tta)
        classify_ms = (time.perf_counter() - start) * 1000 / max(len(frames), 1)
        per_image = np.split(probabilities, np.cumsum([len(found) for found in boxes])[:-1])
        return [
            FrameResult(
                index=frame.index,
                timestamp=frame.timestamp,
                image=image,
                faces=self._faces(found, p, [None] * len(found)),
                name=frame.name,
                detect_ms=ms,
                classify_ms=classify_ms,
            )
            for frame, image, found, p, ms in zip(frames, images, boxes, per_image, detect_ms)
        ]

    def photo_crops(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """The crops of a still image's faces as they reach the model: each box's crop, its exposure
        evened out when ``photo_exposure`` is ``even``."""
        crops = face_crops(image, boxes)
        return [even_exposure(to_grey(crop), CROP_EXPOSURE) for crop in crops] if self.photo_exposure == "even" else crops

    def _timed_detect(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The faces of a whole image, and the milliseconds the search took."""
        start = time.perf_counter()
        return self.detector.detect(image, still=self.photo_search == "still"), (time.perf_counter() - start) * 1000

    def _find(self, image: np.ndarray, tracker: FaceTracker, since_full_search: int) -> tuple[np.ndarray, int]:
        """This frame's faces, and the frames since the last whole-frame search.

        Every tracked face is looked for near where it should be, every ``near_every`` frames; in
        between, faces found in the last frame that move little (:func:`_steady`) keep their
        predicted box. The whole frame is searched too
        while no face is tracked, every ``detect_every`` frames (for faces that came into view),
        and at once when a face seen in the last frame is not found near its box (it moved fast,
        or grew). A face found both ways counts once, with its near-search box.
        """
        if not tracker.tracks:
            return self.detector.detect(image), 1
        # The frame after a whole-frame search is always searched near the faces (new tracks have
        # no velocity yet).
        if (since_full_search + 1) % self.near_every and since_full_search < self.detect_every and all(_steady(t) for t in tracker.tracks):
            return np.rint(tracker.predicted_boxes()).astype(int).reshape(-1, 4), since_full_search + 1
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


def model_inputs(faces: Sequence[np.ndarray]) -> np.ndarray:
    """Face crops of any size, BGR or grey, as the model's input: N x 48 x 48 grey uint8 (area
    resampling), before normalisation."""
    grey = [to_grey(_check_image(face)) for face in faces]
    return np.stack([cv2.resize(f, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA) for f in grey])


def _steady(track: Track) -> bool:
    """A face found in the last frame that moves under STEADY_SPEED of its side a frame: its
    predicted box can stand in for a search."""
    return track.missed == 0 and float(np.hypot(*track.velocity)) <= STEADY_SPEED * max(track.box[2:])
