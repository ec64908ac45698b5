"""Fixtures the model tests share: a seeded generator, random faces, and a parameter count."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_faces(size: int = 48, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A batch of normalised-looking grey faces (random, reproducible)."""
    return torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(seed))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def faces():
    """``faces(size=48, batch=2, seed=0)``: a batch of random grey faces, N x 1 x size x size."""
    return random_faces


@pytest.fixture
def n_params():
    """``n_params(model)``: how many parameters the model has."""
    return parameter_count
