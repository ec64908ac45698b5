"""The MLflow UI in a real browser: a fit's run as `mlflow ui` shows it to headless Chromium
(bench/ui_check.py). Screenshots (runs.png, run.png, confusion_matrix.png) go to $FERLIGHT_UI_SCREENSHOTS
(CI keeps them), else the test's folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import pytest

from ferlight.data import CLASS_NAMES
from ferlight.fit import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import ui_check  # noqa: E402

SHOTS = ("runs.png", "run.png", "confusion_matrix.png")


@pytest.mark.slow
@pytest.mark.skipif(ui_check.chromium() is None,
                    reason="no Chromium on PATH (Debian: apt-get install chromium); the UI check needs a browser")
def test_the_ui_shows_a_fit_with_its_datasets_model_per_class_metrics_and_confusion_matrix(workdir, tiny_csv, request):
    assert main(["--data", str(tiny_csv), "--arch", "fervgg_small", "--epochs", "1", "--batch-size", "32",
                 "--accelerator", "cpu", "--devices", "1", "--precision", "32-true", "--protocol", "standard",
                 "--register-model", "fer-ui"]) == 0
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    experiment = mlflow.MlflowClient(store).get_experiment_by_name("ferlight")
    (run,) = mlflow.MlflowClient(store).search_runs([experiment.experiment_id])
    kept = os.environ.get("FERLIGHT_UI_SCREENSHOTS")  # relative to where pytest started, not to workdir
    shots = request.config.invocation_params.dir / kept if kept else workdir / "ui-screenshots"

    with ui_check.mlflow_ui(store, cwd=workdir) as base:
        seen = ui_check.check_ui(base, store, run.info.run_id, shots)

    assert seen["runs_view"] == f"{base}/#/experiments/{experiment.experiment_id}/runs"
    assert seen["run_name"] == run.info.run_name
    assert seen["datasets"] == ["fer2013-standard-train", "fer2013-standard-val", "fer2013-standard-test"]
    assert seen["metrics"] == sorted(f"test/{kind}/{name.lower()}" for kind in ("precision", "recall", "f1")
                                     for name in CLASS_NAMES)
    assert seen["registered"] == ["fer-ui v1"] and seen["logged_models"] == ["model"]
    assert seen["confusion_matrix_bytes"] > 1000
    for name in SHOTS:
        assert (shots / name).stat().st_size > 10_000, name
