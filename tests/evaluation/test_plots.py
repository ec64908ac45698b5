"""Figures are written as PNGs, without touching matplotlib's backend or pyplot's figures."""

import sys

import matplotlib
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from ferlight.evaluation import plots

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 500)
    return y, np.where(rng.random(500) < 0.6, y, rng.integers(0, 7, 500))


def test_figures_are_pngs(labels, tmp_path):
    y, pred = labels
    png = plots.plot_confusion_matrix(confusion_matrix(y, pred, labels=range(7)), NAMES, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    att = np.random.default_rng(2).random((3, 6, 6))
    fig = plots.plot_attention_maps(faces, att, [0, 3, 6], [0, 3, 5], NAMES, tmp_path / "att.png")
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drawing_leaves_the_backend_and_pyplot_alone(labels, tmp_path):
    backend = matplotlib.rcParams._get_backend_or_none()
    y, pred = labels
    plots.plot_confusion_matrix(confusion_matrix(y, pred, labels=range(7)), NAMES, tmp_path / "cm.png")
    assert matplotlib.rcParams._get_backend_or_none() == backend
    if "matplotlib.pyplot" in sys.modules:  # scikit-learn imports pyplot; no figure may be left open in it
        assert not sys.modules["matplotlib.pyplot"].get_fignums()
