"""bench/paper_study.py at tiny scale: the grid's rows enter the study as completed trials without
training, each new trial lands in the record, and a new machine (no Optuna or MLflow database) goes
on from the record, training only the trials it lacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest

ROOT = Path(__file__).resolve().parents[2]
GRID_ROW = {"optimizer": "adam", "batch_size": 64, "epochs": 1, "limit_train_batches": 2, "lr": 0.001,
            "weight_decay": 0.0, "label_smoothing": 0.0}
GRID = [  # the grid's record format (bench/paper_grid.py); a ResNet row lies outside the study's model
    {**GRID_ROW, "row": "vgg11-adam-64-none", "arch": "vgg11", "dropout_placement": "none", "val_acc": 0.30,
     "val_history": [0.30], "test_acc": 0.28, "mlflow_run_id": "grid-run-1"},
    {**GRID_ROW, "row": "vgg11-adam-64-every", "arch": "vgg11", "dropout_placement": "every", "val_acc": 0.20,
     "val_history": [0.20], "test_acc": 0.19, "mlflow_run_id": "grid-run-2"},
    {**GRID_ROW, "row": "resnet10-adam-64", "arch": "resnet10", "val_acc": 0.25, "val_history": [0.25],
     "test_acc": 0.25, "mlflow_run_id": "grid-run-3"},
]


def study_command(folder: Path, tiny_csv, trials: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "FERLIGHT_CACHE": str(folder / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "paper_study.py"), "--data", str(tiny_csv), "--epochs", "1",
         "--limit-train-batches", "2", "--precision", "32-true", "--accelerator", "cpu", "--trials", str(trials),
         "--grid", "grid.jsonl", "--output", "study.jsonl"],
        cwd=folder, capture_output=True, text=True, timeout=900, env=env,
    )


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "study.jsonl").read_text().splitlines()]


def trial_runs(folder: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("paper-study").experiment_id])
    return [r for r in found if "mlflow.parentRunId" in r.data.tags]


@pytest.mark.slow
def test_the_study_starts_from_the_grid_and_a_new_machine_goes_on_from_the_record(tmp_path, tiny_csv):
    first, second = tmp_path / "machine-1", tmp_path / "machine-2"
    first.mkdir()
    (first / "grid.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GRID))
    out = study_command(first, tiny_csv, trials=2)
    assert out.returncode == 0, out.stderr[-3000:]
    made = records(first)
    assert [r["id"] for r in made] == ["trial-001", "trial-002"] and len(trial_runs(first)) == 2  # the grid: not trained
    assert made[0]["params"] != made[1]["params"]  # the sampler went on, rather than proposing one point twice
    assert all(r["command"].startswith("python -m ferlight.fit ") and "--arch vgg11" in r["command"] for r in made)
    study = optuna.load_study(study_name="paper-study", storage=f"sqlite:///{first / 'optuna.db'}")
    sources = [t.user_attrs.get("source") for t in study.trials]
    assert sources[:2] == ["grid:vgg11-adam-64-none", "grid:vgg11-adam-64-every"] and len(study.trials) == 4
    assert "## Best trial (chosen on validation)" in (first / "study.md").read_text()

    second.mkdir()  # another machine: the committed files only
    for name in ("grid.jsonl", "study.jsonl"):
        shutil.copy(first / name, second / name)
    out = study_command(second, tiny_csv, trials=3)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(trial_runs(second)) == 1  # only the trial the record lacked
    now = records(second)
    assert now[:2] == made and now[2]["id"] == "trial-003"
    study = optuna.load_study(study_name="paper-study", storage=f"sqlite:///{second / 'optuna.db'}")
    assert [t.user_attrs.get("source") for t in study.trials][:4] == sources[:2] + ["trial-001", "trial-002"]
    assert len(study.trials) == 5 and study.metric_names == ["val/best_acc"]
