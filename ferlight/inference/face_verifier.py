"""A second opinion on each face a detector finds in a still image: a small CNN that tells a face
from a non-face on the grey crop of the box, shipped with its weights
(``ferlight/weights/face_verifier.pt``, trained by ``bench/train_face_verifier.py``; its card is
``ferlight/weights/FACE_VERIFIER.md``).

MTCNN's last stage judges a 48 px crop with a network trained on other photos than ours; in busy
photos (coins, gravel, blurred texture) it is sure of boxes that hold no face, and where it doubts,
it loses faces. The verifier was trained on FER2013's Training faces pasted on natural images and
on the boxes MTCNN finds in them that hold no face, so it may both drop false faces and let the
detector keep faces MTCNN doubts (bench/RESULTS.md, "Photos").
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ferlight.inference.crops import crop_box, cut

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "face_verifier.pt"
SIDE = 48  # the crop's side, px
MARGIN = 0.15  # the crop: the box's longer side grown by this share on each side


class FaceVerifierNet(nn.Module):
    """A ``SIDE`` x ``SIDE`` grey crop, standardised, to the logit that it holds a face: four
    3 x 3 convolution blocks (batch norm, ReLU, 2 x 2 max pooling) and a linear layer on the last
    3 x 3 map, which keeps where in the crop each feature is."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        side = SIDE // 2 ** len(widths)
        self.head = nn.Linear(channels * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


def verifier_crops(grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Each box ``(x, y, w, h)`` of a grey image as the verifier sees it: the square of its longer
    side grown by :data:`MARGIN` on each side (edge pixels past the frame), resized to ``SIDE`` px;
    N x SIDE x SIDE uint8."""
    crops = [
        cv2.resize(cut(grey, crop_box(box, MARGIN, 1.0, 0.0), "replicate"), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ]
    return np.stack(crops) if crops else np.zeros((0, SIDE, SIDE), np.uint8)


def standardise(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 crops N x H x W as the network takes them: N x 1 x H x W, each crop at mean 0 and
    standard deviation 1 (so exposure does not decide)."""
    x = torch.as_tensor(np.asarray(crops), dtype=torch.float32)[:, None]
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) / x.std(dim=(2, 3), keepdim=True).clamp_min(4.0)


class FaceVerifier:
    """The shipped verifier: the probability that each box of a grey image holds a face."""

    def __init__(self, weights: str | Path = WEIGHTS) -> None:
        self.net = FaceVerifierNet()
        self.net.load_state_dict(torch.load(weights, weights_only=True))
        self.net.eval()

    @torch.inference_mode()
    def __call__(self, grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        crops = verifier_crops(grey, boxes)
        if not len(crops):
            return np.zeros(0)
        return torch.sigmoid(self.net(standardise(crops))).numpy()
