"""MTCNN (Zhang et al., 2016): a cascade of three small CNNs that finds faces, shipped with its
trained weights (``ferlight/weights/mtcnn.pt``, from the facenet-pytorch wheel: see
``ferlight/weights/MTCNN.md``).

P-Net scans an image pyramid for 12 px face candidates, R-Net rejects most of them on 24 px crops
and O-Net decides on 48 px crops; each stage also nudges the box. Unlike OpenCV's Haar cascade it
finds small, blurred and dim faces (bench/RESULTS.md, "Live"). The networks are plain modules;
:class:`MtcnnFaces` runs the cascade on one image.
"""

from __future__ import annotations

from pathlib import Path

import copy

import cv2
import numpy as np
import torch
from torch import nn

from ferlight.inference.crops import cut

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "mtcnn.pt"
# The face probability each stage needs: the published settings. The pyramid's step is finer than
# the published 0.709: on the live benchmark's tuning clips (48 clips) 0.709 missed 114 faces with
# 45 px as the smallest (some sizes fall between its scales), 0.8 missed 26.
PYRAMID_STEP = 0.8
THRESHOLDS = (0.6, 0.7, 0.7)
# A still image is searched once, with no later frame to find a missed face in: P-Net keeps more
# candidates, and a candidate that R-Net doubts (probability at least RESCUE[0]) still counts when
# O-Net, which sees it at twice R-Net's resolution, is sure of it (at least RESCUE[1]). Chosen on the
# photo benchmark's tuning set (bench/RESULTS.md, "Photos"), where R-Net rejected large, clear
# FER2013 faces that O-Net scored 0.94-0.999; loosened from (0.1, 0.95) once the face verifier
# (ferlight.inference.face_verifier) judged every still-image box: on the two tuning sets, 1,489 of
# 1,550 faces found and 6 false against 1,467 and 1 (bench/RESULTS.md, "Photos: a face verifier").
STILL_PNET = 0.5
RESCUE = (0.05, 0.8)
# Of the boxes R-Net doubts, only the RESCUE_AT_MOST most probable go on to O-Net (its costliest
# stage): on the tuning sets 1,481 faces found and 5 false against 1,489 and 6 with all of them, and
# the search as fast as before RESCUE was loosened (31.9 against 32.5 ms a busy photo; 34.8 with all).
RESCUE_AT_MOST = 10


def _conv(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel), nn.PReLU(out_channels)]


class PNet(nn.Module):
    """Proposal network: fully convolutional, a face probability and box offsets per 12 px window
    (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 10, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_conv(10, 16, 3), *_conv(16, 32, 3))
        self.face = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(x)
        return self.face(x).softmax(1)[:, 1], self.box(x)


class _CropNet(nn.Module):
    """R-Net and O-Net: a face probability and box offsets for each crop."""

    def __init__(self, body: list[nn.Module], features: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.dense = nn.Sequential(nn.Linear(features, hidden), nn.PReLU(hidden))
        self.face = nn.Linear(hidden, 2)
        self.box = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The weights come from Caffe, which flattens width before height.
        x = self.dense(self.body(x).permute(0, 3, 2, 1).flatten(1))
        return self.face(x).softmax(1)[:, 1], self.box(x)


def rnet() -> _CropNet:
    """Refinement network on 24 x 24 crops."""
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    return _CropNet([*_conv(3, 28, 3), pool, *_conv(28, 48, 3), pool, *_conv(48, 64, 2)], 576, 128)


def onet() -> _CropNet:
    """Output network on 48 x 48 crops."""
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    body = [*_conv(3, 32, 3), pool, *_conv(32, 64, 3), pool, *_conv(64, 64, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_conv(64, 128, 2)]
    return _CropNet(body, 1152, 256)


def for_grey(net: nn.Module) -> nn.Module:
    """A copy of ``net`` that takes one grey channel: its first convolution's weights summed over
    R, G and B. On a grey image (R = G = B) it gives what ``net`` gives on the three-channel copy,
    with a third of the input to resize and convolve."""
    grey = copy.deepcopy(net)
    first = grey.body[0]
    folded = nn.Conv2d(1, first.out_channels, first.kernel_size)
    folded.weight.data = first.weight.data.sum(1, keepdim=True)
    folded.bias.data = first.bias.data.clone()
    # Channels-last weights keep the activations channels-last, as a permuted RGB input makes them:
    # the pooling layers run about 3x faster on that layout than on NCHW (1 thread).
    grey.body[0] = folded.to(memory_format=torch.channels_last)
    return grey.eval()


def _normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 images, N x H x W x 3 (RGB) or N x H x W (grey), as MTCNN was trained on: N x C x H x W
    in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    tensor = tensor[:, None] if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
    return (tensor.float() - 127.5) * 0.0078125


def _nms(boxes: np.ndarray, threshold: float, overlap_of_smaller: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression on rows ``x1, y1, x2, y2, score``: the indices kept. Overlap
    is IoU, or the intersection over the smaller box (MTCNN's last stage, which drops a box inside
    another). IoU goes to OpenCV's ``NMSBoxes`` (the same greedy rule, 10-40x faster than numpy
    here); OpenCV has no intersection-over-smaller, which runs once an image on few boxes."""
    if not overlap_of_smaller:
        corners = boxes[:, :4].astype(np.float64)
        kept = cv2.dnn.NMSBoxes(np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]]), boxes[:, 4].astype(np.float32), 0.0, threshold)
        return np.asarray(kept, dtype=int).reshape(-1)
    order = np.argsort(-boxes[:, 4])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        width = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])
        height = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        order = rest[inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9) <= threshold]
    return np.array(keep, dtype=int)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by the networks' offsets (fractions of their sides)."""
    sides = np.tile(boxes[:, 2:4] - boxes[:, 0:2], 2)
    return np.column_stack([boxes[:, :4] + offsets * sides, boxes[:, 4]])


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square about its centre, on its longer side."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, 0:2]).max(axis=1, keepdims=True) / 2
    return np.column_stack([centre - half, centre + half, boxes[:, 4]])


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box's pixels (zero past the image's edge; all zero for a box outside it or under 2 px)
    resized to ``size`` x ``size``."""
    height, width = image.shape[:2]
    crops = np.zeros((len(boxes), size, size, *image.shape[2:]), dtype=np.uint8)
    for crop, (x1, y1, x2, y2) in zip(crops, np.rint(boxes[:, :4]).astype(int)):
        if x2 - x1 >= 2 and y2 - y1 >= 2 and x2 > 0 and y2 > 0 and x1 < width and y1 < height:
            crop[:] = cv2.resize(cut(image, (x1, y1, x2 - x1, y2 - y1), "zero"), (size, size), interpolation=cv2.INTER_AREA)
    return crops


class MtcnnFaces:
    """The three networks with their weights, run as one cascade on an RGB or a grey image."""

    def __init__(self, weights: str | Path = WEIGHTS, face_probability: float = THRESHOLDS[2]) -> None:
        """``face_probability``: what O-Net's verdict needs (the earlier stages keep theirs)."""
        state = torch.load(weights, weights_only=True)
        self.pnet, self.rnet, self.onet = PNet(), rnet(), onet()
        for name in ("pnet", "rnet", "onet"):
            getattr(self, name).load_state_dict(state[name])
            getattr(self, name).eval()
        self.grey_nets = tuple(for_grey(net) for net in (self.pnet, self.rnet, self.onet))
        self.thresholds = (*THRESHOLDS[:2], face_probability)

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        min_size: int,
        max_size: int | None = None,
        candidates: int | None = None,
        still: bool = False,
        face_probability: float | None = None,
    ) -> np.ndarray:
        """Faces of side about ``min_size`` to ``max_size`` px in an RGB (H x W x 3) or grey (H x W)
        uint8 image, as rows ``x1, y1, x2, y2, probability``. ``candidates``: at most this many of
        R-Net's boxes, the most probable, go on to O-Net (the costliest stage), for a caller that
        wants one face. ``still``: the still-image search (:data:`STILL_PNET`, :data:`RESCUE`).
        ``face_probability``: O-Net's threshold for this image (None: the one it was built with)."""
        pnet, rnet, onet = self.grey_nets if image.ndim == 2 else (self.pnet, self.rnet, self.onet)
        boxes = self._propose(pnet, image, min_size, max_size, STILL_PNET if still else self.thresholds[0])
        if len(boxes):  # R-Net
            boxes = self._refine(rnet, image, boxes, 24, RESCUE[0] if still else self.thresholds[1])
            boxes = _square(_regress(*_suppress(boxes, 0.7)))
            boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")[:candidates]]
            if still:  # the most probable of the doubted boxes only
                boxes = boxes[: int((boxes[:, 4] >= self.thresholds[1]).sum()) + RESCUE_AT_MOST]
        if len(boxes):  # O-Net
            doubted = boxes[:, 4] < self.thresholds[1]
            boxes, offsets = self._refine(onet, image, boxes, 48, 0.0)
            last = self.thresholds[2] if face_probability is None else face_probability
            keep = boxes[:, 4] >= np.where(doubted, max(RESCUE[1], last), last)
            boxes = _regress(boxes[keep], offsets[keep])
            boxes = boxes[_nms(boxes, 0.7, overlap_of_smaller=True)]
        return boxes

    def _propose(self, pnet: nn.Module, image: np.ndarray, min_size: int, max_size: int | None, threshold: float) -> np.ndarray:
        """P-Net's candidates over the pyramid: square boxes, fewest per face after suppression."""
        height, width = image.shape[:2]
        scale, boxes, offsets = 12 / min_size, [np.zeros((0, 5))], [np.zeros((0, 4))]
        while min(height, width) * scale >= 12 and (max_size is None or 12 / scale <= max_size):
            # Each level from the whole image: resizing each from the level before is 3x cheaper but
            # changed which faces were found (bench_photos tune: 709/778 and 5 false, against 711 and 3).
            resized = cv2.resize(image, (int(width * scale + 1), int(height * scale + 1)), interpolation=cv2.INTER_AREA)
            probability, offset = pnet(_normalise(resized[None]))
            probability, offset = probability[0].numpy(), offset[0].numpy()
            rows, cols = np.nonzero(probability >= threshold)
            corner = np.column_stack([cols, rows]) * 2  # the window's place at stride 2
            found = np.column_stack([np.floor((corner + 1) / scale), np.floor((corner + 12) / scale), probability[rows, cols]])
            found, offset = _suppress((found, offset[:, rows, cols].T), 0.5)
            boxes.append(found)
            offsets.append(offset)
            scale *= PYRAMID_STEP
        return _square(_regress(*_suppress((np.concatenate(boxes), np.concatenate(offsets)), 0.7)))

    @staticmethod
    def _refine(net: nn.Module, image: np.ndarray, boxes: np.ndarray, size: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """The boxes ``net`` scores at least ``threshold`` on their crops, with its new scores, and
        its offsets."""
        probability, offsets = (out.numpy() for out in net(_normalise(_crops(image, boxes, size))))
        keep = probability >= threshold
        return np.column_stack([boxes[keep, :4], probability[keep]]), offsets[keep]


def _suppress(boxes_and_offsets: tuple[np.ndarray, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Non-maximum suppression (IoU) of boxes carrying their offsets along."""
    boxes, offsets = boxes_and_offsets
    keep = _nms(boxes, threshold)
    return boxes[keep], offsets[keep]
