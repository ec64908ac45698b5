"""Building blocks shared by the model families: VGG-style blocks, dense heads, weight init."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def conv_layers(in_channels: int, out_channels: int, kernel_size: int = 3, batch_norm: bool = False) -> list[nn.Module]:
    """A same-padding convolution, optionally batch norm, then ReLU (the conv has no bias when BN follows)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [conv, *norm, nn.ReLU(inplace=True)]


def vgg_block(in_channels: int, widths: Sequence[int], kernel_size: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """One VGG block: a convolution per entry of ``widths``, then 2x2 max pooling (halves H and W)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += conv_layers(in_channels, width, kernel_size, batch_norm)
        in_channels = width
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def dense_layers(in_features: int, widths: Sequence[int], dropout: float | None = None) -> list[nn.Module]:
    """Fully connected hidden layers, each Linear + ReLU, then Dropout(``dropout``) unless it is None.

    A dropout of 0 still adds the (identity) layer, so the state-dict keys do not depend on its value.
    """
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        if dropout is not None:
            layers.append(nn.Dropout(dropout))
        in_features = width
    return layers


def pooled_classifier(in_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Global average pooling, dropout and one linear layer: the head of ResNets and fervgg_small."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, num_classes))


def init_weights(model: nn.Module) -> None:
    """He initialisation for convolutions (as torchvision's VGG and ResNet), unit BN, PyTorch's default for Linear.

    PyTorch's default conv init shrinks the signal at every ReLU layer, which stalls the deep VGGs
    without batch norm; He (fan-out) init keeps its scale, so every architecture trains from scratch.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
