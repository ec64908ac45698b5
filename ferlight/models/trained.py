"""A trained network together with what it takes to use it: its classes and input size."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class LoadedModel:
    """A model in eval mode and what is needed to feed it (crop size) and read its output (class names)."""

    model: nn.Module
    arch: str
    class_names: tuple[str, ...]
    crop_size: int
    model_options: dict = field(default_factory=dict)
