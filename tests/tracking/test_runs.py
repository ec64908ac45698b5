"""Runs: the Trainer's logger (its run made at once, its artifact folder checked), a run made outside
a Trainer, the run to resume, and tags, params, metrics, artifacts and status written by run id."""

from __future__ import annotations

import pytest

from ferlight.errors import ConfigError
from ferlight.tracking.runs import (
    create_logger,
    create_run,
    find_resumable_run,
    log_artifacts,
    log_metrics,
    log_params,
    run_exists,
    run_status,
    set_status,
    set_tags,
)
from ferlight.tracking.store import client as store_client


def test_a_run_made_outside_a_trainer_gets_its_experiment_made_once(mlflow_store):
    client = store_client()
    first = create_run(client, "study", "s", {"ferlight.kind": "study"})
    second = create_run(client, "study", "s", {})
    runs = {r.info.run_id: r for r in client.search_runs([client.get_experiment_by_name("study").experiment_id])}
    assert set(runs) == {first, second} and runs[first].data.tags["ferlight.kind"] == "study"
    assert run_status(client, first) == "RUNNING" and run_exists(client, first) and not run_exists(client, "f" * 32)


def test_tags_params_metrics_artifacts_and_status_by_run_id(mlflow_store, workdir):
    client = store_client()
    run_id = create_run(client, "ferlight", "r", {})
    set_tags(client, run_id, {"trial_state": "complete", "best.batch_size": 64})
    log_params(client, run_id, {"sampler": "grid", "grid_points": 27})
    log_metrics(client, run_id, {"best/val_acc": 0.5}, step=3)
    (workdir / "grid.yaml").write_text("grid: []\n")
    log_artifacts(client, run_id, [workdir / "grid.yaml"], "study")
    set_status(client, run_id, "FINISHED")
    run = client.get_run(run_id)
    assert (run.data.tags["trial_state"], run.data.tags["best.batch_size"]) == ("complete", "64")
    assert run.data.params == {"sampler": "grid", "grid_points": "27"}
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "best/val_acc")] == [(0.5, 3)]
    assert [a.path for a in client.list_artifacts(run_id, "study")] == ["study/grid.yaml"]
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    set_status(client, run_id, "RUNNING")  # a resumed study's parent run
    assert run_status(client, run_id) == "RUNNING"


def test_the_run_to_resume_is_the_newest_unfinished_one_of_that_name(mlflow_store):
    client = store_client()
    assert find_resumable_run("ferlight", "r") is None  # no such experiment yet
    older, newer, other = (create_run(client, "ferlight", name, {}) for name in ("r", "r", "other"))
    assert find_resumable_run("ferlight", "r") == newer
    set_status(client, newer, "FINISHED")
    assert find_resumable_run("ferlight", "r") == older


def test_the_trainers_logger_has_its_run_already(mlflow_store):
    logger = create_logger("ferlight", "fit", tags={"hardware.cores": "2"})
    run = store_client().get_run(logger.run_id)
    assert (run.info.run_name, run.data.tags["hardware.cores"], run.info.status) == ("fit", "2", "RUNNING")
    assert create_logger("ferlight", "fit", run_id=logger.run_id).run_id == logger.run_id  # resumed


def test_an_unwritable_artifact_folder_is_one_config_error(mlflow_store):
    store_client().create_experiment("nowhere", artifact_location="/dev/null/artifacts")
    with pytest.raises(ConfigError, match="cannot write MLflow artifacts to /dev/null/artifacts/"):
        create_logger("nowhere", "fit")
