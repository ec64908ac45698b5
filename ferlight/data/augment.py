"""Training augmentation applied to whole batches of tensors, on whatever device they are on.

``none`` takes the central ``crop_size`` crop (what evaluation sees). ``strong`` draws, per face: a
random crop position (a crop of ``crop_size`` anywhere in the 48 x 48 face; at 48, a shift of up to
4 px, padding with the mean grey), a horizontal flip (p = 0.5) and a rotation of up to 10 degrees,
applied together as one affine resampling; then random erasing (p = 0.5) of a rectangle covering 2
to 20 % of the crop, aspect ratio 0.3 to 3.3, filled with the mean grey (0 after normalisation),
as torchvision's RandomErasing does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ferlight.data.preprocess import IMAGE_SIZE, center_crop
from ferlight.errors import ConfigError
from ferlight.options import AUGMENTATIONS, check_choice

PAD = 4  # largest shift, in pixels, when the crop is the whole face
MAX_ROTATION_DEGREES = 10.0
ERASE_PROBABILITY = 0.5
ERASE_AREA = (0.02, 0.2)
ERASE_ASPECT = (0.3, 3.3)


class BatchAugment(nn.Module):
    """Augments normalised batches N x 1 x 48 x 48 into N x 1 x crop_size x crop_size."""

    def __init__(self, policy: str = "none", crop_size: int = IMAGE_SIZE) -> None:
        super().__init__()
        check_choice("augmentation", policy, AUGMENTATIONS)
        if not 8 <= crop_size <= IMAGE_SIZE:
            raise ConfigError(f"crop_size must be between 8 and {IMAGE_SIZE}, got {crop_size}")
        self.policy = policy
        self.crop_size = crop_size

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}, crop_size={self.crop_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.policy == "none":
            return center_crop(x, self.crop_size)
        return self._erase(self._crop_flip_rotate(x))

    def _crop_flip_rotate(self, x: torch.Tensor) -> torch.Tensor:
        """A random crop position, a random flip and a small random rotation for each face."""
        n, size = len(x), x.shape[-1]
        max_shift = (size - self.crop_size) / 2 if self.crop_size < size else PAD
        angle = _symmetric(n, x.device) * MAX_ROTATION_DEGREES
        flip = torch.rand(n, device=x.device) < 0.5
        shift = torch.stack([_symmetric(n, x.device), _symmetric(n, x.device)], 1) * max_shift
        return self.resample(x, angle, flip, shift)

    def resample(self, x: torch.Tensor, degrees: torch.Tensor, flip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The crop_size window of each face, rotated by ``degrees``, mirrored where ``flip``, and moved
        by ``shift`` (N x 2, pixels right and down) from the centre; one bilinear resampling."""
        size = x.shape[-1]
        scale = self.crop_size / size
        angle = torch.deg2rad(degrees)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        mirror = 1.0 - 2.0 * flip.to(cos.dtype)
        offset = shift.to(cos.dtype) * (2 / size)  # pixels -> affine_grid's [-1, 1] units
        theta = torch.stack(
            [torch.stack([cos * mirror, -sin, offset[:, 0]], 1), torch.stack([sin * mirror, cos, offset[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, [len(x), x.shape[1], self.crop_size, self.crop_size], align_corners=False)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        """Random erasing: zero a random rectangle in about half of the faces."""
        n, size = len(x), x.shape[-1]
        area = torch.empty(n, device=x.device).uniform_(*ERASE_AREA) * size * size
        log_aspect = torch.empty(n, device=x.device).uniform_(math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1]))
        height = torch.sqrt(area * torch.exp(log_aspect)).round().clamp(1, size)
        width = torch.sqrt(area / torch.exp(log_aspect)).round().clamp(1, size)
        top = (torch.rand(n, device=x.device) * (size - height + 1)).floor()
        left = (torch.rand(n, device=x.device) * (size - width + 1)).floor()
        erase = torch.rand(n, device=x.device) < ERASE_PROBABILITY
        rows = torch.arange(size, device=x.device)
        in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
        in_cols = (rows >= left[:, None]) & (rows < (left + width)[:, None])
        mask = erase[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]
        return x.masked_fill(mask[:, None], 0.0)


def _symmetric(n: int, device: torch.device) -> torch.Tensor:
    """n draws from U(-1, 1)."""
    return torch.rand(n, device=device) * 2 - 1
