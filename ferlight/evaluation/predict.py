"""Evaluate trained models (one checkpoint or an ensemble) on a split of FER2013, with test-time views.

Used by ``python -m ferlight.evaluate`` and the benchmarks. Works with torch models alone: a model
from :func:`ferlight.inference.checkpoint.load_model` or any ``nn.Module`` with its crop size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ferlight.data.preprocess import normalize, tta_views
from ferlight.errors import ConfigError
from ferlight.models import LoadedModel
from ferlight.hardware.precision import AUTO, autocast, inference_decision
from ferlight.evaluation.reports import classification_report


def tta_probabilities(model: nn.Module, x: torch.Tensor, tta: str, crop_size: int) -> torch.Tensor:
    """Softmax probabilities of a normalised 48 x 48 batch, averaged over the test-time views."""
    views = tta_views(x, tta, crop_size)
    logits = model(views.flatten(0, 1)).unflatten(0, views.shape[:2])
    return logits.float().softmax(-1).mean(0)


def precision_decision(
    models: Sequence[LoadedModel], tta: str = "none", batch_size: int = 256, device="cpu", precision: str = AUTO,
    cache_dir=None,
):
    """The precision for evaluating ``models``, with its one-line reason: ``precision`` (32-true,
    bf16-mixed, 16-mixed) as given, or with ``auto`` the fastest on this machine for the first model
    at the batches it will see (the benchmark's result is cached in ``cache_dir``, default: the
    ferlight cache folder; :func:`ferlight.hardware.precision.inference_decision`)."""
    first = models[0]
    views = len(tta_views(torch.zeros(1, 1, 48, 48), tta, first.crop_size))
    shape = (batch_size * views, 1, first.crop_size, first.crop_size)
    return inference_decision(first.model, device, shape, cache_dir=cache_dir, precision=precision)


@torch.inference_mode()
def predict_proba(
    models: Sequence[LoadedModel], images: np.ndarray, tta: str = "none", batch_size: int = 256, device="cpu",
    precision: str = "32-true",
) -> np.ndarray:
    """Class probabilities N x C of uint8 faces N x 48 x 48, averaged over models (an ensemble).

    ``precision``: ``32-true`` (the default: exact float32, as callers comparing figures expect),
    ``bf16-mixed`` / ``16-mixed`` (autocast), or ``auto``: bf16 autocast where that is measurably
    faster on this machine, else float32 (what ``python -m ferlight.evaluate`` uses).
    """
    if not models:
        raise ConfigError("no model to evaluate")
    names = {m.class_names for m in models}
    if len(names) > 1:
        raise ConfigError(f"the ensemble's models predict different classes: {sorted(names)}")
    nets = [m.model.to(device).eval() for m in models]
    dtype = precision_decision(models, tta, batch_size, device, precision).dtype
    out = []
    for start in range(0, len(images), batch_size):
        x = normalize(torch.from_numpy(images[start : start + batch_size]).to(device))
        with autocast(device, dtype):
            probs = [tta_probabilities(net, x, tta, m.crop_size) for net, m in zip(nets, models)]
        out.append(torch.stack(probs).mean(0).float().cpu())
    return torch.cat(out).numpy()


@dataclass
class Evaluation:
    """Accuracy, confusion matrix and the paper-layout report of predictions on one split."""

    accuracy: float
    confusion: np.ndarray
    report: dict
    probabilities: np.ndarray
    precision: str = "32-true"


def evaluate(
    models: Sequence[LoadedModel], images: np.ndarray, labels: np.ndarray, tta: str = "none",
    batch_size: int = 256, device="cpu", precision: str = "32-true",
) -> Evaluation:
    """Predict ``images`` with the (ensemble of) models and score against ``labels``."""
    probs = predict_proba(models, images, tta, batch_size, device, precision)
    n = len(models[0].class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, probs.argmax(1)), 1)
    return Evaluation(
        accuracy=float((probs.argmax(1) == labels).mean()) if len(labels) else 0.0,
        confusion=confusion,
        report=classification_report(confusion, models[0].class_names),
        probabilities=probs,
        precision=precision,
    )
