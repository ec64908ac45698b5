"""The paper's classification report (its Figures 4, 6 and 9), as a dict, text and files.

It works from a confusion matrix, so the same functions serve training runs (where torchmetrics
syncs the matrix across DDP ranks), ``ferlight.evaluate`` and notebooks. Figures are in
:mod:`ferlight.evaluation.plots`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ferlight.atomic import atomic_output


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (a class never predicted has precision 0)."""
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
    precision = ratio(tp, confusion.sum(0))
    recall = ratio(tp, support)
    f1 = ratio(2 * precision * recall, precision + recall)
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
    weights = ratio(support, np.full_like(support, total))
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
