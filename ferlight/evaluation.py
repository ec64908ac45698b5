"""Evaluate trained models (one checkpoint or an ensemble) on a split of FER2013, with test-time views.

Used by ``python -m ferlight.evaluate`` and the benchmarks. Works with torch models alone: a model
from :func:`ferlight.checkpoint.load_model` or any ``nn.Module`` with its crop size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ferlight.checkpoint import LoadedModel
from ferlight.data.preprocess import normalize, tta_views
from ferlight.errors import ConfigError
from ferlight.reports import classification_report


def tta_probabilities(model: nn.Module, x: torch.Tensor, tta: str, crop_size: int) -> torch.Tensor:
    """Softmax probabilities of a normalised 48 x 48 batch, averaged over the test-time views."""
    views = tta_views(x, tta, crop_size)
    logits = model(views.flatten(0, 1)).unflatten(0, views.shape[:2])
    return logits.float().softmax(-1).mean(0)


@torch.inference_mode()
def predict_proba(
    models: Sequence[LoadedModel], images: np.ndarray, tta: str = "none", batch_size: int = 256, device="cpu"
) -> np.ndarray:
    """Class probabilities N x C of uint8 faces N x 48 x 48, averaged over models (an ensemble)."""
    if not models:
        raise ConfigError("no model to evaluate")
    names = {m.class_names for m in models}
    if len(names) > 1:
        raise ConfigError(f"the ensemble's models predict different classes: {sorted(names)}")
    nets = [m.model.to(device).eval() for m in models]
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(torch.from_numpy(images[start : start + batch_size]).to(device))
        probs = [tta_probabilities(net, x, tta, m.crop_size) for net, m in zip(nets, models)]
        out.append(torch.stack(probs).mean(0).cpu())
    return torch.cat(out).numpy()


@dataclass
class Evaluation:
    """Accuracy, confusion matrix and the paper-layout report of predictions on one split."""

    accuracy: float
    confusion: np.ndarray
    report: dict
    probabilities: np.ndarray


def evaluate(
    models: Sequence[LoadedModel], images: np.ndarray, labels: np.ndarray, tta: str = "none",
    batch_size: int = 256, device="cpu",
) -> Evaluation:
    """Predict ``images`` with the (ensemble of) models and score against ``labels``."""
    probs = predict_proba(models, images, tta, batch_size, device)
    n = len(models[0].class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, probs.argmax(1)), 1)
    return Evaluation(
        accuracy=float((probs.argmax(1) == labels).mean()) if len(labels) else 0.0,
        confusion=confusion,
        report=classification_report(confusion, models[0].class_names),
        probabilities=probs,
    )
