"""A ferlight checkpoint with random weights, laid out as Lightning saves one.

Enough for loading, detection, tracking, IO and speed (which do not depend on weight values), not
for accuracy.
"""

from __future__ import annotations

import os

import torch

from ferlight.data import CLASS_NAMES
from ferlight.models import create_model


def save_checkpoint(path: str | os.PathLike, arch: str = "fervgg_small", crop_size: int = 48, seed: int = 0):
    """A ferlight checkpoint of ``arch`` with random weights, laid out as Lightning saves one."""
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=len(CLASS_NAMES))
    hyper_parameters = {"arch": arch, "model_options": {}, "class_names": list(CLASS_NAMES), "crop_size": crop_size}
    state_dict = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": hyper_parameters, "state_dict": state_dict}, path)
    return path
