"""The recommended architecture, ``fervgg``, and its CPU-budget variant ``fervgg_small``.

``fervgg`` is the VGG variant of Khaireddin & Chen, "Facial Emotion Recognition: State of the Art
Performance on FER2013" (2021, arXiv:2105.03588; 73.28% on PrivateTest, their code
github.com/usef-kh/fer): four stages of two 3x3 conv + BN + ReLU with 2x2 max pooling after each
stage, widths 64/128/256/512, then dense layers of 4096 and 4096, each with ReLU and dropout (their
code's default 0.2), and the classifier. They trained on 40 px crops, which leave a 2 x 2 map to
flatten; here an adaptive average pool to 2 x 2 feeds the dense layers, so 40, 44 and 48 px inputs
share the same weights (it is the identity for 40 and 44 px; at 48 px it averages the 3 x 3 map).

``fervgg_small`` keeps the same four stages at half width (32/64/128/256) and replaces the dense
layers by global average pooling, dropout and one linear layer: the 1.17 M-parameter net of
shared/REFERENCE.md, which reached 67.4% on PrivateTest in 15 CPU minutes. The two share
:class:`FerVGG`; they differ in width and head, which is why each has its own builder.
"""

from __future__ import annotations

import torch
from torch import nn

from ferlight.models._layers import dense_layers, init_weights, pooled_classifier, vgg_block
from ferlight.models._registry import check_choice, check_positive_int, check_probability, register_model

STAGES = 4
CONVS_PER_STAGE = 2
HEADS = ("dense", "gap")
DENSE_MAP_SIZE = 2  # the map the dense head flattens, as for the paper's 40 px crops


class FerVGG(nn.Module):
    """Four stages of two conv+BN+ReLU and max pooling (widths ``width`` x 1, 2, 4, 8), then a head.

    ``head="dense"``: pool to 2 x 2, flatten, two dense layers of ``hidden`` with dropout, classifier.
    ``head="gap"``: global average pooling, dropout, classifier (``hidden`` unused).
    """

    def __init__(
        self, num_classes: int = 7, width: int = 64, head: str = "dense", hidden: int = 4096, dropout: float = 0.2
    ) -> None:
        super().__init__()
        check_positive_int("width", width)
        check_choice("head", head, HEADS)
        check_positive_int("hidden", hidden)
        check_probability("dropout", dropout)
        stages = []
        in_channels = 1
        for stage in range(STAGES):
            out_channels = width * 2**stage
            stages.append(vgg_block(in_channels, (out_channels,) * CONVS_PER_STAGE, batch_norm=True))
            in_channels = out_channels
        self.features = nn.Sequential(*stages)
        if head == "dense":
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(DENSE_MAP_SIZE),
                nn.Flatten(),
                *dense_layers(in_channels * DENSE_MAP_SIZE**2, (hidden, hidden), dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.head = pooled_classifier(in_channels, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model
def fervgg(num_classes: int = 7, *, width: int = 64, hidden: int = 4096, dropout: float = 0.2) -> FerVGG:
    """The recommended model: Khaireddin & Chen's VGG variant (73.28% reported on FER2013 PrivateTest)."""
    return FerVGG(num_classes, width, "dense", hidden, dropout)


@register_model
def fervgg_small(num_classes: int = 7, *, width: int = 32, dropout: float = 0.3) -> FerVGG:
    """``fervgg``'s stages at half width with a global-average-pool head: 1.17 M parameters, for CPU budgets."""
    return FerVGG(num_classes, width, "gap", dropout=dropout)
