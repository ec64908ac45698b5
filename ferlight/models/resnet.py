"""The paper's ResNet10, ResNet18 and ResNet50, adapted to 1 x 48 x 48 grey faces.

Blocks as in He et al. 2016 (and torchvision): the basic block (two 3x3 convs) for ResNet10/18 and
the bottleneck (1x1, 3x3, 1x1 with 4x expansion) for ResNet50; each stage after the first halves H
and W with a stride-2 first block and a 1x1 projection shortcut.

Stem (option ``stem``): a 3x3 stride-1 convolution to 64 channels, BN and ReLU, then
- ``"pooled"`` (default): 2x2 max pooling, so the four stages see 24, 12, 6, 3 px of a 48 px face;
- ``"cifar"``: no pooling (the CIFAR-10 ResNets' stem), stages at 48, 24, 12, 6 px, for 4x the
  multiply-adds (ResNet18: 1.25 G instead of 0.31 G per face).
ImageNet's stem (7x7 stride-2 conv + max pool) would leave a 48 px face 12 x 12 before the first
block and 2 x 2 at the end, too coarse for facial detail. The head is global average pooling,
optional dropout and one linear layer, so 40 and 44 px crops work with the same weights.

- ``resnet18``: four stages of two basic blocks, widths 64/128/256/512.
- ``resnet50``: bottleneck stages of 3, 4, 6, 3 blocks, widths 64/128/256/512 (x4 out).
- ``resnet10``: the paper's two-stage variant of ResNet18's blocks: stages of two basic blocks at
  widths 64 and 128 (stem + 8 convs + classifier = 10 weight layers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ferlight.models._layers import init_weights, pooled_classifier
from ferlight.models._registry import check_choice, check_probability, register_model

STEM_WIDTH = 64
STEMS = ("pooled", "cifar")


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    """A bias-free convolution (same padding) followed by batch norm."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
    return [conv, nn.BatchNorm2d(out_channels)]


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 projection with batch norm."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(*conv_bn(in_channels, out_channels, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet10/18)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(in_channels, width, 3, stride),
            nn.ReLU(inplace=True),
            *conv_bn(width, width, 3),
        )
        self.shortcut = shortcut(in_channels, width, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand to 4 x width, with a residual connection (ResNet50)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.body = nn.Sequential(
            *conv_bn(in_channels, width, 1),
            nn.ReLU(inplace=True),
            *conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *conv_bn(width, out_channels, 1),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, then one stage of ``block``s per entry of ``depths``/``widths``, then pooled linear head."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 7,
        dropout: float = 0.0,
        stem: str = "pooled",
    ) -> None:
        super().__init__()
        check_probability("dropout", dropout)
        check_choice("stem", stem, STEMS)
        pool = [nn.MaxPool2d(2)] if stem == "pooled" else []
        self.stem = nn.Sequential(*conv_bn(1, STEM_WIDTH, 3), nn.ReLU(inplace=True), *pool)
        stages = []
        in_channels = STEM_WIDTH
        for index, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for position in range(depth):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(block(in_channels, width, stride))
                in_channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = pooled_classifier(in_channels, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


@register_model
def resnet10(num_classes: int = 7, *, dropout: float = 0.0, stem: str = "pooled") -> ResNet:
    """The paper's two-stage ResNet10: two basic blocks at width 64, two at 128."""
    return ResNet(BasicBlock, (2, 2), (64, 128), num_classes, dropout, stem)


@register_model
def resnet18(num_classes: int = 7, *, dropout: float = 0.0, stem: str = "pooled") -> ResNet:
    """ResNet18: basic blocks 2-2-2-2 at widths 64/128/256/512."""
    return ResNet(BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), num_classes, dropout, stem)


@register_model
def resnet50(num_classes: int = 7, *, dropout: float = 0.0, stem: str = "pooled") -> ResNet:
    """ResNet50: bottleneck blocks 3-4-6-3 at widths 64/128/256/512 (2048 features)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512), num_classes, dropout, stem)
