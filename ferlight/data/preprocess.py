"""The preprocessing shared by training, evaluation and live inference.

Every path into a model goes through these functions, so a face seen by the webcam is turned into
a tensor exactly as a face of the test split is. Input is uint8 grey images, output float tensors
N x 1 x H x W normalised with FER2013's training-set pixel statistics.
"""

from __future__ import annotations

import torch

from ferlight.options import TTA_MODES, check_choice

IMAGE_SIZE = 48
# Mean and standard deviation of FER2013 Training pixels, scaled to [0, 1].
MEAN = 0.5077
STD = 0.2550


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W (or N x 1 x H x W) -> normalised float32 N x 1 x H x W."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    return (images.float() / 255.0 - MEAN) / STD


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central size x size window of N x C x H x W (identity when already that size)."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def eval_transform(images: torch.Tensor, crop_size: int = IMAGE_SIZE) -> torch.Tensor:
    """What a model sees at evaluation: normalised, then the central crop it was trained on."""
    return center_crop(normalize(images), crop_size)


def tta_views(x: torch.Tensor, mode: str, crop_size: int = IMAGE_SIZE) -> torch.Tensor:
    """Test-time views of a normalised batch N x 1 x H x W, stacked as V x N x 1 x c x c.

    ``none``: the centre crop; ``flip``: the centre crop and its mirror; ``tencrop``: four corner
    crops and the centre crop, each with its mirror (for models trained on crops).
    """
    check_choice("test-time augmentation", mode, TTA_MODES)
    center = center_crop(x, crop_size)
    if mode == "none":
        return center.unsqueeze(0)
    if mode == "flip":
        return torch.stack([center, center.flip(-1)])
    h, w = x.shape[-2:]
    c = crop_size
    crops = [center] + [x[..., t : t + c, l : l + c] for t in (0, h - c) for l in (0, w - c)]
    return torch.stack(crops + [crop.flip(-1) for crop in crops])

