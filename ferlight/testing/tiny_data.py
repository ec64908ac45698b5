"""Tiny FER2013 files for tests that train: small enough for seconds, learnable on purpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlight.data import CLASS_NAMES

PER_CLASS = {"Training": 24, "PublicTest": 6, "PrivateTest": 6}


def write_tiny_fer2013(path: Path, seed: int = 0) -> Path:
    """A Kaggle-layout CSV whose classes differ in brightness, so a model can learn them."""
    rng = np.random.default_rng(seed)
    rows = ["emotion,pixels,Usage"]
    for usage, n in PER_CLASS.items():
        for label in range(len(CLASS_NAMES)):
            for _ in range(n):
                face = np.clip(rng.normal(40 + 25 * label, 20, 48 * 48), 0, 255).astype(np.uint8)
                rows.append(f"{label},{' '.join(map(str, face))},{usage}")
    path.write_text("\n".join(rows) + "\n")
    return path
