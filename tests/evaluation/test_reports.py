"""The paper-layout report agrees with scikit-learn and is written as text and JSON."""

import json

import numpy as np
import pytest
from sklearn.metrics import classification_report as sk_report
from sklearn.metrics import confusion_matrix

from ferlight.evaluation import reports

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 500)
    pred = np.where(rng.random(500) < 0.6, y, rng.integers(0, 7, 500))
    pred[pred == 1] = 2  # a class never predicted: precision 0 without a division error
    return y, pred


def test_report_matches_sklearn(labels):
    y, pred = labels
    ours = reports.classification_report(confusion_matrix(y, pred, labels=range(7)), NAMES)
    theirs = sk_report(y, pred, labels=range(7), target_names=NAMES, output_dict=True, zero_division=0)
    for name in (*NAMES, "macro avg", "weighted avg"):
        for key in ("precision", "recall", "f1-score", "support"):
            assert ours[name][key] == pytest.approx(theirs[name][key]), (name, key)
    assert ours["micro avg"]["f1-score"] == pytest.approx(theirs["accuracy"])
    assert ours["micro avg"]["support"] == len(y)


def test_text_layout_and_files(labels, tmp_path):
    y, pred = labels
    report = reports.classification_report(confusion_matrix(y, pred, labels=range(7)), NAMES)
    text = reports.format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert [line.split()[0] for line in lines[2:9]] == list(NAMES)
    assert any(line.strip().startswith("weighted avg") for line in lines)
    paths = reports.write_report(report, tmp_path)
    assert json.loads(paths[1].read_text())["happy"]["support"] == int((y == 3).sum())
    assert not list(tmp_path.glob(".*tmp*"))
