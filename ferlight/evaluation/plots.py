"""Figures of a run: the confusion matrix and attention maps over faces (the paper's Figure 8).

Drawn on matplotlib ``Figure`` objects, not pyplot, so that drawing one neither picks nor changes
the user's backend, and written atomically as PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from ferlight.atomic import atomic_output
from ferlight.evaluation.reports import ratio


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return Path(path)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Row-normalised confusion matrix (scikit-learn's display), each cell with its count too, as a PNG."""
    confusion = np.asarray(confusion)
    rates = ratio(confusion.astype(float), confusion.sum(1, keepdims=True).astype(float))
    size = 1.1 * len(class_names)
    fig = Figure(figsize=(size + 2, size + 1))
    display = ConfusionMatrixDisplay(rates, display_labels=list(class_names))
    display.plot(ax=fig.subplots(), cmap="Blues", colorbar=False, xticks_rotation=45, im_kw={"vmin": 0, "vmax": 1})
    for (i, j), count in np.ndenumerate(confusion):
        display.text_[i, j].set_text(f"{rates[i, j]:.2f}\n({count})")
        display.text_[i, j].set_fontsize(8)
    display.ax_.set(xlabel="predicted", ylabel="true", title="Confusion matrix (rows normalised)")
    return _save(fig, path)


def plot_attention_maps(
    images: np.ndarray,
    attention: np.ndarray,
    labels: Sequence[int],
    predictions: Sequence[int],
    class_names: Sequence[str],
    path: str | os.PathLike,
) -> Path:
    """Faces with their attention maps overlaid (the paper's Figure 8), one column per face.

    ``images`` are uint8 N x H x W faces, ``attention`` N x h x w maps (stretched over the face).
    """
    n = len(images)
    fig = Figure(figsize=(1.6 * n, 3.6))
    axes = fig.subplots(2, n, squeeze=False)
    for k in range(n):
        face = images[k]
        h, w = face.shape
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # stretch the coarse map over the whole face
        axes[0, k].imshow(face, cmap="gray", vmin=0, vmax=255)
        axes[0, k].set_title(f"true: {class_names[labels[k]]}", fontsize=8)
        axes[1, k].imshow(face, cmap="gray", vmin=0, vmax=255)
        axes[1, k].imshow(attention[k], cmap="jet", alpha=0.45, extent=extent, interpolation="bilinear")
        axes[1, k].set_title(f"pred: {class_names[predictions[k]]}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Attention over test faces")
    return _save(fig, path)
