"""The best checkpoint of a fit run: found where the run logged it, or one CheckpointError."""

from __future__ import annotations

import pytest

from ferlight.errors import CheckpointError
from ferlight.tracking.checkpoints import BEST_CHECKPOINT, CHECKPOINT_ARTIFACTS, best_checkpoint
from ferlight.tracking.runs import create_run, log_artifacts
from ferlight.tracking.store import client as store_client


def test_best_checkpoint_is_found_where_the_run_logged_it(mlflow_store, workdir):
    client = store_client()
    run_id = create_run(client, "ferlight", "fit", {})
    (workdir / BEST_CHECKPOINT).write_bytes(b"weights")
    log_artifacts(client, run_id, [workdir / BEST_CHECKPOINT], CHECKPOINT_ARTIFACTS)
    assert best_checkpoint(run_id, mlflow_store).read_bytes() == b"weights"


def test_a_run_without_one_is_one_checkpoint_error(mlflow_store):
    run_id = create_run(store_client(), "ferlight", "fit", {})
    with pytest.raises(CheckpointError) as err:
        best_checkpoint(run_id)
    assert str(err.value).startswith(f"no best checkpoint for MLflow run {run_id!r} in ") and "\n" not in str(err.value)
