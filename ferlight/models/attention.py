"""The paper's best model: VGG11 with growing kernels, batch norm and a spatial attention layer.

The five VGG11 blocks (conv widths 64 | 128 | 256,256 | 512,512 | 512,512, each ending in 2x2 max
pooling) use kernel sizes that grow with depth, by default (3, 3, 5, 5, 7):

- blocks 1 and 2: 3x3 (local edges and parts at 48 and 24 px),
- blocks 3 and 4: 5x5,
- block 5: 7x7 (at 3 x 3 px it mixes the whole map).

Every convolution is followed by batch norm and ReLU. Between block 2 and block 3 a spatial
attention layer weights the regions of the 128-channel feature map (12 x 12 for a 48 px face,
10 x 10 for 40 px, 11 x 11 for 44 px): a 7x7 convolution of the channel-wise mean and max, then a
sigmoid (the spatial branch of CBAM, Woo et al. 2018), so each weight is in [0, 1] and the larger
kernels after it combine the regions it kept. Then two dense layers of 2048 (with ``dropout``) and
the classifier.

``forward(x)`` returns logits; ``forward_with_attention(x)`` returns ``(logits, weights)`` where
``weights`` (N x 1 x h x w, at the feature map's resolution above) are the spatial weights the layer
applied; upsample them to the face (``F.interpolate``) to draw them, as in the paper's Figure 8.
``attention=False`` builds the ablation, :class:`GrowingKernelVGG`, the same network without the
layer: it has no ``forward_with_attention`` (test ``hasattr(model, "forward_with_attention")``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ferlight.errors import ConfigError
from ferlight.models._layers import dense_layers, init_weights, vgg_block
from ferlight.models._registry import check_bool, check_probability, register_model
from ferlight.models.vgg import DENSE_WIDTHS, VGG11_BLOCKS

KERNEL_SIZES = (3, 3, 5, 5, 7)
ATTENTION_AFTER_BLOCK = 2  # the layer weights the output of this many blocks
ATTENTION_KERNEL = 7


class SpatialAttention(nn.Module):
    """Spatial weights N x 1 x H x W in [0, 1] from the channel mean and max of a feature map."""

    def __init__(self, kernel_size: int = ATTENTION_KERNEL) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class GrowingKernelVGG(nn.Module):
    """VGG11 + BN with growing kernels and no attention layer: the ablation (``attention=False``)."""

    def __init__(self, num_classes: int = 7, dropout: float = 0.5, kernel_sizes: Sequence[int] = KERNEL_SIZES) -> None:
        super().__init__()
        check_probability("dropout", dropout)
        check_kernel_sizes(kernel_sizes)
        blocks = []
        in_channels = 1
        for widths, kernel_size in zip(VGG11_BLOCKS, kernel_sizes):
            blocks.append(vgg_block(in_channels, widths, kernel_size, batch_norm=True))
            in_channels = widths[-1]
        self.early = nn.Sequential(*blocks[:ATTENTION_AFTER_BLOCK])
        self.late = nn.Sequential(*blocks[ATTENTION_AFTER_BLOCK:])
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *dense_layers(in_channels, DENSE_WIDTHS, dropout),
            nn.Linear(DENSE_WIDTHS[-1], num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.early(x))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the output of block 2: blocks 3 to 5, then the dense layers."""
        return self.classifier(self.late(features))


class AttentionVGG(GrowingKernelVGG):
    """The attention model: :class:`GrowingKernelVGG` with spatial attention weighting block 2's output."""

    def __init__(self, num_classes: int = 7, dropout: float = 0.5, kernel_sizes: Sequence[int] = KERNEL_SIZES) -> None:
        super().__init__(num_classes, dropout, kernel_sizes)
        # PyTorch's default init (not He's): small weights, so training starts near uniform weights of 0.5
        self.attention = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the spatial weights N x 1 x h x w the attention layer applied."""
        features = self.early(x)
        weights = self.attention(features)
        return self.classify(features * weights), weights


def check_kernel_sizes(kernel_sizes: object) -> None:
    """ConfigError unless ``kernel_sizes`` is five odd positive integers, one per VGG11 block."""
    valid = (
        isinstance(kernel_sizes, (list, tuple))
        and len(kernel_sizes) == len(VGG11_BLOCKS)
        and all(isinstance(k, int) and not isinstance(k, bool) and k > 0 and k % 2 == 1 for k in kernel_sizes)
    )
    if not valid:
        raise ConfigError(f"option kernel_sizes={kernel_sizes!r} must be {len(VGG11_BLOCKS)} odd positive integers")


@register_model
def attention(
    num_classes: int = 7, *, attention: bool = True, dropout: float = 0.5, kernel_sizes: Sequence[int] = KERNEL_SIZES
) -> AttentionVGG:
    """The paper's attention model (VGG11 base, kernels 3/3/5/5/7); ``attention=False`` is the ablation."""
    check_bool("attention", attention)
    model_class = AttentionVGG if attention else GrowingKernelVGG
    return model_class(num_classes, dropout, kernel_sizes)
