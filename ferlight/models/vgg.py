"""The paper's VGG11 and VGG16 (its Figures 2 and 3), for 1 x 48 x 48 grey faces.

Five blocks of 3x3 same-padding convolutions with ReLU, each block ending in 2x2 max pooling, so a
48 px face (and a 40 or 44 px crop) is reduced to 512 x 1 x 1; then dense layers 2048, 2048 and the
classifier. Inputs from 32 to 63 px give that 1 x 1 map; other sizes are not supported.

Options: ``batch_norm`` (off by default, as in the paper) and the paper's dropout after the conv
blocks, ``dropout_placement``: ``none``, ``every`` (after each of the five blocks) or ``alternate``
(after blocks 1, 3 and 5, so the last block, feeding the dense layers, always has it), with
probability ``dropout``. The dense layers have no dropout, as in the paper's figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ferlight.models._layers import dense_layers, init_weights, vgg_block
from ferlight.options import DROPOUT_PLACEMENTS
from ferlight.models._registry import check_bool, check_choice, check_probability, register_model

# Conv widths per block; each block ends in 2x2 max pooling.
VGG11_BLOCKS = ((64,), (128,), (256, 256), (512, 512), (512, 512))
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
DENSE_WIDTHS = (2048, 2048)


class VGG(nn.Module):
    """VGG for 1-channel faces: ``features`` (one nn.Sequential per block) then ``classifier``."""

    def __init__(
        self,
        blocks: Sequence[Sequence[int]],
        num_classes: int = 7,
        batch_norm: bool = False,
        dropout_placement: str = "none",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_bool("batch_norm", batch_norm)
        check_choice("dropout_placement", dropout_placement, DROPOUT_PLACEMENTS)
        check_probability("dropout", dropout)
        features = []
        in_channels = 1
        for index, widths in enumerate(blocks):
            block = vgg_block(in_channels, widths, batch_norm=batch_norm)
            if dropout_after_block(index, dropout_placement):
                block.append(nn.Dropout(dropout))
            features.append(block)
            in_channels = widths[-1]
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *dense_layers(in_channels, DENSE_WIDTHS),
            nn.Linear(DENSE_WIDTHS[-1], num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def dropout_after_block(index: int, placement: str) -> bool:
    """Whether block ``index`` (0-based) ends in dropout: every block, or blocks 1, 3, 5 (1-based)."""
    return placement == "every" or (placement == "alternate" and index % 2 == 0)


@register_model
def vgg11(
    num_classes: int = 7, *, batch_norm: bool = False, dropout_placement: str = "none", dropout: float = 0.5
) -> VGG:
    """The paper's VGG11 (Figure 2): 8 conv layers; 14,480,647 parameters at 7 classes with defaults."""
    return VGG(VGG11_BLOCKS, num_classes, batch_norm, dropout_placement, dropout)


@register_model
def vgg16(
    num_classes: int = 7, *, batch_norm: bool = False, dropout_placement: str = "none", dropout: float = 0.5
) -> VGG:
    """The paper's VGG16 (Figure 3): 13 conv layers; 19,974,855 parameters at 7 classes with defaults."""
    return VGG(VGG16_BLOCKS, num_classes, batch_norm, dropout_placement, dropout)
