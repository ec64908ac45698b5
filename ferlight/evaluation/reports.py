"""Reports in the paper's layout: classification report, confusion matrix and attention figures.

Everything here works on plain arrays (a confusion matrix, images, attention maps), so the same
functions serve training runs, ``ferlight.evaluate`` and notebooks. Figures are drawn with
matplotlib's non-interactive Agg backend and written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ferlight.atomic import atomic_output  # noqa: E402


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def classification_report(confusion: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per-class precision, recall, F1 and support, then micro / macro / weighted averages.

    ``confusion[i, j]`` counts faces of true class i predicted as j (torchmetrics' layout). The
    keys and numbers match scikit-learn's ``classification_report(output_dict=True)``, the layout
    of the paper's Figures 4, 6 and 9.
    """
    confusion = np.asarray(confusion, dtype=float)
    tp = np.diag(confusion)
    support = confusion.sum(1)
    precision = _ratio(tp, confusion.sum(0))
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    report = {
        name: {"precision": p, "recall": r, "f1-score": f, "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    }
    total = support.sum()
    accuracy = float(tp.sum() / total) if total else 0.0
    report["micro avg"] = {"precision": accuracy, "recall": accuracy, "f1-score": accuracy, "support": int(total)}
    report["macro avg"] = {
        "precision": precision.mean(), "recall": recall.mean(), "f1-score": f1.mean(), "support": int(total)
    }
    weights = _ratio(support, np.full_like(support, total))
    report["weighted avg"] = {
        "precision": float(precision @ weights),
        "recall": float(recall @ weights),
        "f1-score": float(f1 @ weights),
        "support": int(total),
    }
    return {name: {k: (float(v) if k != "support" else v) for k, v in row.items()} for name, row in report.items()}


def format_report(report: dict, digits: int = 2) -> str:
    """The report as text, in the column layout the paper shows."""
    width = max(len(name) for name in report)
    header = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [header, ""]
    for i, (name, row) in enumerate(report.items()):
        if name == "micro avg":
            lines.append("")
        values = " ".join(f"{row[k]:>9.{digits}f}" for k in ("precision", "recall", "f1-score"))
        lines.append(f"{name:>{width}} {values} {row['support']:>9}")
    return "\n".join(lines) + "\n"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_report(report: dict, directory: str | os.PathLike) -> list[Path]:
    """Write ``classification_report.txt`` and ``classification_report.json`` into ``directory``."""
    directory = Path(directory)
    return [
        write_text(directory / "classification_report.txt", format_report(report)),
        write_text(directory / "classification_report.json", json.dumps(report, indent=2) + "\n"),
    ]


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Row-normalised confusion matrix with counts, saved as a PNG."""
    confusion = np.asarray(confusion)
    rates = _ratio(confusion.astype(float), confusion.sum(1, keepdims=True).astype(float))
    fig, ax = plt.subplots(figsize=(1.1 * len(class_names) + 2, 1.1 * len(class_names) + 1))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(confusion):
        color = "white" if rates[i, j] > 0.5 else "black"
        ax.text(j, i, f"{rates[i, j]:.2f}\n({count})", ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (rows normalised)")
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
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
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
