"""Face detectors for live inference: MTCNN (shipped, the default), OpenCV's Haar cascade
(shipped) and YuNet (bring the model).

A detector maps a BGR or grey frame to face boxes ``(x, y, w, h)`` in that frame's pixels, as an
``N x 4`` int array. Two searches are offered:

- :meth:`FaceDetector.detect` scans the whole frame, optionally downscaled by ``detect_scale``
  (the Haar cascade's cost falls roughly with the square of the scale; MTCNN's pyramid starts at
  the smallest face whatever the scale);
- :meth:`FaceDetector.detect_near` looks for each known face only in a window around its last
  (where the tracker predicts it), at about its size. On video this is several times cheaper than
  a full scan, which is how :class:`ferlight.inference.recognizer.Recognizer` keeps up with a camera on a
  small CPU.

:class:`DetectorOptions` holds every option of the detectors, with its default and help;
:func:`create_detector` builds the detector they describe, and ``python -m ferlight.live`` turns
them into its face-detection flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import cv2
import numpy as np

from ferlight.errors import ConfigError, first_line
from ferlight.inference.boxes import box_iou
from ferlight.inference.face_verifier import FaceVerifier
from ferlight.inference.mtcnn import MtcnnFaces
from ferlight.options import DETECTORS, check_choice, option, options_for

# MTCNN by default: on the live benchmark's tuning clips (bench/RESULTS.md) the whole pipeline got
# 2,135 of 2,160 frames right with it and 1,965 with the Haar cascade, at about the same speed (the
# cascade never finds some small or blurred faces). The face probability its last stage needs is
# the published 0.7 (0.8: 2,137 frames right; 0.9: 2,107).
DETECTOR = "mtcnn"
FACE_PROBABILITY = 0.7
# OpenCV's frontal-face cascades differ: on the live benchmark's tuning clips (bench/RESULTS.md)
# the whole pipeline got 1,966 of 2,160 frames right with "alt2" and 1,910 with "default" (0 false
# faces vs 23); whole-frame searches missed 5 of 549 faces vs 10.
HAAR_CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_alt2.xml"
# Defaults chosen on the live benchmark's tuning clips (bench/bench_live.py, real faces of 60-250
# px on busy backgrounds; measured on its held-out clips, bench/RESULTS.md): the whole frame is
# searched at 3/4 size (Haar: at half size, 60-80 px faces were missed; MTCNN: 2,133, 2,135 and
# 2,129 frames right at 1/2, 3/4 and full size), by Haar and YuNet for faces of 60 px and more
# (MTCNN: MTCNN_MIN_FACE below). Haar only:
# scale factor 1.1 is OpenCV's default; 4 neighbours (OpenCV's 5 missed more faces, 3 gave false
# ones). The grey frame is searched as it is: equalising its histogram first lost more faces
# (146 of 1,080 frames wrong instead of 63, an earlier 12-clip tuning set) and took longer.
DETECT_SCALE = 0.75
MIN_FACE = 60
# MTCNN looks for smaller faces: the benchmark's smallest faces are 60 px FER2013 frames, whose face
# can be two thirds of that, and MTCNN's box is the face. On the tuning clips (48 clips, with its
# pyramid step 0.8) 4,290 of 4,320 frames were right with 45 px, 4,277 with 40 and 4,261 with 60.
MTCNN_MIN_FACE = 45
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 4
# detect_near: the window around a known face (its predicted box grown by NEAR_MARGIN of its side
# on each side), the side (px) the face is scaled to in it (twice the cascade's 24 px window:
# smaller misses faces), and the face sizes accepted there, relative to the known one.
NEAR_MARGIN = 0.3
NEAR_FACE = 48
NEAR_SIZE_RANGE = (0.8, 1.25)
# MTCNN in the near search: only R-Net's most probable box goes on to O-Net (its costliest stage,
# which saw 4 near-duplicate boxes a window on average). On the tuning clips (24, seeds 0-1):
# 2,140 of 2,160 frames right and 5 false faces, against 2,141 and 4 with every box, at 81.9
# against 67.0 fps on the two-face clips; the two best boxes: 2,136 right, 9 false.
NEAR_CANDIDATES = 1
# Still images only: the mean grey levels left as they are; outside, a gamma brings the mean to 0.5
# before the search. On the photo benchmark's tuning set (bench/RESULTS.md, "Photos") this found 721
# of 778 faces against 711 (4 false against 3), at no cost; CLAHE found 722 with 6 false, 10% slower.
EVEN_EXPOSURE = (0.45, 0.55)
# Still images only: a box that the face verifier (ferlight.inference.face_verifier) gives less than
# this probability is dropped; 0 turns the verifier off. With the verifier on, MTCNN's last stage
# keeps its boxes from STILL_FACE_PROBABILITY (not face_probability) and the verifier has the last
# word. On the photo benchmark's two tuning sets (bench/RESULTS.md, "Photos: a face verifier"),
# with MTCNN's RESCUE and RESCUE_AT_MOST: 1,481 of 1,550 faces found and 5 false, against 1,460
# and 7 before (no verifier, O-Net at face_probability).
VERIFIER_PROBABILITY = 0.5
STILL_FACE_PROBABILITY = 0.1


@dataclass(frozen=True)
class DetectorOptions:
    """Which face detector, and how it searches (see the constants above for how the defaults
    were chosen)."""

    detector: Literal[DETECTORS] = option(DETECTOR, "MTCNN (shipped), OpenCV's Haar cascade (shipped) or YuNet (bring its model)")
    detector_model: Optional[str] = option(None, "the YuNet ONNX model (face_detection_yunet_*.onnx)")
    scale_factor: float = option(SCALE_FACTOR, "Haar: scale step between searched sizes")
    min_neighbors: int = option(MIN_NEIGHBORS, "Haar: overlapping hits needed for a face")
    min_face: Optional[int] = option(None, f"smallest face found, in pixels (default: {MTCNN_MIN_FACE} for mtcnn, {MIN_FACE} for haar and yunet)")
    face_probability: float = option(FACE_PROBABILITY, "MTCNN and YuNet: the probability a face needs")
    detect_scale: float = option(
        DETECT_SCALE, "search the whole frame downscaled by this factor; the Haar cascade finds no face under 24 / scale px"
    )
    verifier_probability: float = option(
        VERIFIER_PROBABILITY, "still images: the probability the face verifier must give a box to keep it (0: no verifier)"
    )


def to_grey(image: np.ndarray) -> np.ndarray:
    """A grey view of a BGR or grey image."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def even_exposure(image: np.ndarray, band: tuple[float, float] = EVEN_EXPOSURE) -> np.ndarray:
    """``image`` with a gamma that brings its mean grey level to mid-grey, unless it is already within
    ``band`` (fractions of white) of it: dark and bright photos hide faces from the detector."""
    mean = float(to_grey(image).mean()) / 255
    low, high = band
    if low <= mean <= high:
        return image
    gamma = np.log(0.5) / np.log(min(max(mean, 1e-3), 1 - 1e-3))
    return cv2.LUT(image, np.clip(255 * (np.arange(256) / 255) ** gamma, 0, 255).astype(np.uint8))


def _bgr(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _boxes(found) -> np.ndarray:
    return np.asarray(found, dtype=np.float64).reshape(-1, 4)


def _sized(boxes: np.ndarray, min_size: int, max_size: int | None) -> np.ndarray:
    """The boxes whose longer side is in [min_size, max_size] px (no upper bound when None)."""
    side = boxes[:, 2:].max(axis=1)
    return boxes[(side >= min_size) & (side <= (max_size or np.inf))]


def _clip(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Float boxes rounded to int, clipped to a frame of ``shape``, empty ones dropped, sorted left
    to right (OpenCV's threads return them in varying order)."""
    boxes = np.rint(boxes).astype(int).reshape(-1, 4)
    height, width = shape[:2]
    left, top = np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height)
    right = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    bottom = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    clipped = np.stack([left, top, right - left, bottom - top], axis=1)
    clipped = clipped[(clipped[:, 2] > 0) & (clipped[:, 3] > 0)]
    return clipped[np.lexsort((clipped[:, 1], clipped[:, 0]))]


class FaceDetector:
    """Whole-frame and near-a-known-face search; subclasses implement :meth:`find`."""

    thread_safe = False  # whether one detector may search several images at once, one thread each
    # A still image's search: (scale, smallest face in the image's pixels as a share of
    # ``min_face``); None: the frame's.
    still_search: tuple[float, float] | None = None

    def __init__(
        self, min_face: int = MIN_FACE, detect_scale: float = DETECT_SCALE, verifier_probability: float = VERIFIER_PROBABILITY
    ) -> None:
        if isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 1:
            raise ConfigError(f"min_face must be a positive number of pixels, got {min_face!r}")
        if not 0 < detect_scale <= 1:
            raise ConfigError(f"detect_scale must be in (0, 1], got {detect_scale!r}")
        if not 0 <= verifier_probability < 1:
            raise ConfigError(f"verifier_probability must be in [0, 1), got {verifier_probability!r}")
        self.min_face = min_face
        self.detect_scale = detect_scale
        self.verifier_probability = verifier_probability
        self.verifier = FaceVerifier() if verifier_probability > 0 else None

    def find(self, image: np.ndarray, min_size: int, max_size: int | None, one_face: bool = False, still: bool = False) -> np.ndarray:
        """Boxes (float N x 4) of faces of side in [min_size, max_size] px in ``image`` (BGR or grey).
        ``one_face``: the caller keeps one face (the near search), so a detector may skip the rest;
        ``still``: a still image, searched once, so a detector may search it harder."""
        raise NotImplementedError

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The frame as :meth:`find` takes it, made once before any resizing (so a grey and a BGR
        frame give the same boxes, and resizing has one channel to do where one is enough)."""
        return image

    def detect(self, image: np.ndarray, still: bool = False) -> np.ndarray:
        """Every face of at least ``min_face`` px in the frame, as int boxes N x 4. ``still``: a
        still image (no later frame will find a face missed here): its exposure is evened out
        first (:func:`even_exposure`), it is searched as :attr:`still_search` says, the detector
        may search harder, and the face verifier drops the boxes it doubts."""
        scale, smallest = self.detect_scale, self.min_face * self.detect_scale
        prepared = self.prepare(image)
        if still:
            prepared = even_exposure(prepared)
            if self.still_search is not None:
                scale, share = self.still_search
                smallest = self.min_face * share * scale
        searched = _resize(prepared, scale)
        found = self.find(searched, max(1, round(smallest)), None, still=still)
        if still and self.verifier is not None and len(found):
            found = found[self.verifier(to_grey(searched), found) >= self.verifier_probability]
        return _clip(found / scale, image.shape)

    def detect_near(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The face found near each box (at most one each, near-duplicates dropped), as int boxes."""
        height, width = image.shape[:2]
        image = self.prepare(image)
        kept: list[np.ndarray] = []
        for x, y, w, h in np.rint(np.asarray(boxes, dtype=np.float64)).astype(int).reshape(-1, 4):
            side = max(w, h)
            margin = int(NEAR_MARGIN * side)
            left, top = max(x - margin, 0), max(y - margin, 0)
            right, bottom = min(x + w + margin, width), min(y + h + margin, height)
            low, high = NEAR_SIZE_RANGE
            if min(right - left, bottom - top) < low * side:
                continue  # too little of the window is inside the frame to hold the face
            scale = min(1.0, NEAR_FACE / side)
            window = _resize(image[top:bottom, left:right], scale)
            found = self.find(window, max(1, int(low * side * scale)), int(high * side * scale) + 1, one_face=True)
            if len(found):
                best = found[np.argmax(found[:, 2])] / scale + (left, top, 0, 0)
                if not kept or box_iou(best[None], np.array(kept)).max() < 0.5:
                    kept.append(best)
        return _clip(np.array(kept), image.shape)


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade on the grey frame."""

    def __init__(
        self,
        scale_factor: float = SCALE_FACTOR,
        min_neighbors: int = MIN_NEIGHBORS,
        min_face: int = MIN_FACE,
        detect_scale: float = DETECT_SCALE,
        cascade: str | os.PathLike = HAAR_CASCADE,
        verifier_probability: float = VERIFIER_PROBABILITY,
    ) -> None:
        super().__init__(min_face, detect_scale, verifier_probability)
        if not scale_factor > 1:
            raise ConfigError(f"scale_factor must be above 1, got {scale_factor!r}")
        if isinstance(min_neighbors, bool) or not isinstance(min_neighbors, int) or min_neighbors < 0:
            raise ConfigError(f"min_neighbors must be a non-negative integer, got {min_neighbors!r}")
        self.cascade = cv2.CascadeClassifier(str(cascade))
        if self.cascade.empty():
            raise ConfigError(f"cannot load the Haar cascade {cascade} (opencv-python 4.x ships it; 5.x does not)")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return to_grey(image)

    def find(self, image: np.ndarray, min_size: int, max_size: int | None, one_face: bool = False, still: bool = False) -> np.ndarray:
        found = self.cascade.detectMultiScale(
            to_grey(image),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_size, min_size),
            maxSize=(max_size or 0, max_size or 0),  # 0: no upper bound
        )
        return _boxes(found)


class YuNetDetector(FaceDetector):
    """OpenCV's ``FaceDetectorYN`` with a YuNet ONNX model the user provides (it is not shipped)."""

    def __init__(
        self,
        model: str | os.PathLike,
        min_face: int = MIN_FACE,
        detect_scale: float = DETECT_SCALE,
        face_probability: float = FACE_PROBABILITY,
        verifier_probability: float = VERIFIER_PROBABILITY,
    ) -> None:
        super().__init__(min_face, detect_scale, verifier_probability)
        if not Path(model).is_file():
            raise ConfigError(f"YuNet model not found: {model} (download face_detection_yunet_*.onnx from OpenCV Zoo)")
        try:
            self.net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), face_probability)
        except cv2.error as err:
            raise ConfigError(f"{model} is not a YuNet ONNX model ({_opencv_message(err)})") from None

    def detect_near(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """YuNet searches the whole frame every time: the near-a-face search is tuned for the Haar
        cascade only (YuNet's speed and its accuracy on small windows are not measured here)."""
        return self.detect(image)

    def find(self, image: np.ndarray, min_size: int, max_size: int | None, one_face: bool = False, still: bool = False) -> np.ndarray:
        height, width = image.shape[:2]
        self.net.setInputSize((width, height))
        _, faces = self.net.detect(_bgr(image))
        return _sized(_boxes(faces[:, :4] if faces is not None else []), min_size, max_size)


class MtcnnDetector(FaceDetector):
    """MTCNN (:mod:`ferlight.inference.mtcnn`, shipped weights) on the grey frame: on the live
    benchmark's tuning clips it got 2,145 of 2,160 frames right on grey and 2,135 on colour (10
    false faces against none), and grey and colour frames give the same boxes."""

    thread_safe = True  # its networks and OpenCV calls keep no state between calls
    # A still image has no frame rate to keep: it is searched at full size, for faces down to 0.8 of
    # ``min_face`` (36 px by default). On the photo benchmark's two tuning sets, against 3/4 size
    # from 45 px: tune 741/778 faces found and 3 false (740 and 6), busy 725/772 and 4 (717 and 5).
    still_search = (1.0, 0.8)

    def __init__(
        self,
        min_face: int = MTCNN_MIN_FACE,
        detect_scale: float = DETECT_SCALE,
        face_probability: float = FACE_PROBABILITY,
        verifier_probability: float = VERIFIER_PROBABILITY,
    ) -> None:
        super().__init__(min_face, detect_scale, verifier_probability)
        if not 0 <= face_probability < 1:
            raise ConfigError(f"face_probability must be in [0, 1), got {face_probability!r}")
        self.faces = MtcnnFaces(face_probability=face_probability)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return to_grey(image)

    def find(self, image: np.ndarray, min_size: int, max_size: int | None, one_face: bool = False, still: bool = False) -> np.ndarray:
        verified = still and self.verifier is not None
        found = self.faces(
            to_grey(image), min_size, max_size, candidates=NEAR_CANDIDATES if one_face else None, still=still,
            face_probability=STILL_FACE_PROBABILITY if verified else None,
        )
        return _sized(np.column_stack([found[:, :2], found[:, 2:4] - found[:, :2]]), min_size, max_size)


# The options only some detectors use; setting one for another detector is an error, not a no-op.
ONLY_FOR = {
    "scale_factor": ("haar",),
    "min_neighbors": ("haar",),
    "face_probability": ("mtcnn", "yunet"),
    "detector_model": ("yunet",),
}


def create_detector(options: DetectorOptions | None = None) -> FaceDetector:
    """The detector ``options`` describe (default: MTCNN with its tuned settings); the yunet
    detector needs its ONNX file (``detector_model``)."""
    options = options or DetectorOptions()
    check_choice("detector", options.detector, DETECTORS)
    defaults = DetectorOptions()
    for name, detectors in ONLY_FOR.items():
        if options.detector not in detectors and getattr(options, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{name} ({flag}) is only used by the {' and '.join(detectors)} detector, not {options.detector}")
    if options.detector == "yunet" and options.detector_model is None:
        raise ConfigError("the yunet detector needs its ONNX model file (detector_model, --detector-model)")
    detector = {"haar": HaarDetector, "mtcnn": MtcnnDetector, "yunet": YuNetDetector}[options.detector]
    # An option left at None takes the detector's own default (min_face differs between them).
    settings = {name: value for name, value in options_for(detector, options).items() if value is not None}
    return YuNetDetector(options.detector_model, **settings) if detector is YuNetDetector else detector(**settings)


def _opencv_message(err: cv2.error) -> str:
    """OpenCV's message without its source-file prefix: ``OpenCV(4.x) file.cpp:12: error: (-5) msg``."""
    return first_line(err).split("error: ", 1)[-1]
