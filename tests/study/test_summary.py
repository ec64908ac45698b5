"""What a study comes to: the trials table, and the best settings, metric and plots on the parent run
(drawn without leaving Optuna's plot style behind)."""

from __future__ import annotations

import matplotlib
import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState, create_trial

from ferlight import tracking
from ferlight.data import CLASS_NAMES
from ferlight.inference.pyfunc import CHECKPOINT, EmotionModel, input_example, signature
from ferlight.study.summary import register_best, summarize, trials_table

POINTS = CategoricalDistribution([0, 1, 2])


def grid_study(values=(0.5, 0.75), fail_last: bool = False) -> optuna.Study:
    """A grid study's trials: complete ones with their settings and runs, then one that failed and is queued again."""
    study = optuna.create_study(direction="maximize")
    for point, value in enumerate(values):
        study.add_trial(create_trial(
            params={"point": point}, distributions={"point": POINTS}, value=value,
            user_attrs={"settings": {"batch_size": 32 * (point + 1), "optimizer": "adam"}, "mlflow_run_id": f"run{point}"},
        ))
    if fail_last:
        study.add_trial(create_trial(params={"point": 2}, distributions={"point": POINTS}, state=TrialState.FAIL,
                                     user_attrs={"settings": {"batch_size": 128, "optimizer": "sgd"}}))
        RetryHeartbeatStaleTrialCallback()(study, study.trials[-1])
    return study


def test_table_marks_the_best_trial_and_the_rerun_of_a_failed_one():
    lines = trials_table(grid_study(fail_last=True)).splitlines()
    assert lines[0].split() == ["trial", "state", "val", "acc", "settings"]
    assert lines[1].split() == ["0", "complete", "0.5000", "batch_size=32", "optimizer=adam"]
    assert lines[2].split() == ["1*", "complete", "0.7500", "batch_size=64", "optimizer=adam"]
    assert lines[3].split()[:5] == ["2", "fail", "(rerun", "as", "3)"] and lines[4].split()[:3] == ["3", "waiting", "-"]


def test_table_of_a_study_without_trials_is_its_header():
    assert trials_table(optuna.create_study()).split() == ["trial", "state", "val", "acc", "settings"]


def test_summary_puts_the_best_settings_metric_and_plots_on_the_parent_run(mlflow_store):
    client = tracking.client()
    parent = tracking.create_run(client, "ferlight", "study", {})
    style = dict(matplotlib.rcParams)
    summarize(grid_study(), parent)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert (tags["best.batch_size"], tags["best.optimizer"], tags["best.trial_number"], tags["best.run_id"]) == ("64", "adam", "1", "run1")
    assert [(m.value, m.step) for m in client.get_metric_history(parent, "best/val_acc")] == [(0.75, 2)]
    assert {a.path for a in client.list_artifacts(parent)} == {"optimization_history.png", "param_importances.png"}
    assert dict(matplotlib.rcParams) == style  # Optuna's ggplot style stays inside the summary


def test_summary_of_a_study_without_a_complete_trial_only_ends_the_parent_run(mlflow_store):
    client = tracking.client()
    parent = tracking.create_run(client, "ferlight", "study", {})
    summarize(optuna.create_study(direction="maximize"), parent)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and not any(k.startswith("best.") for k in run.data.tags)
    assert client.list_artifacts(parent) == []


def test_the_best_trials_model_is_registered_once_and_champion_only_when_better(mlflow_store, checkpoint):
    client = tracking.client()

    def trial_run(name):
        run_id = tracking.create_run(client, "ferlight", name, {})
        tracking.log_model(run_id, EmotionModel(), {CHECKPOINT: checkpoint}, signature(CLASS_NAMES),
                           input_example(np.zeros((1, 48, 48), np.uint8)), ["torch"])
        return run_id

    good, worse, better = trial_run("good"), trial_run("worse"), trial_run("better")
    assert register_best("grid", good, 0.6) == 1
    assert register_best("grid", good, 0.6) == 1  # the same best trial again (a resumed study): no new version
    assert register_best("grid", worse, 0.5) == 2  # another study's best under the name: registered, not champion
    assert client.get_model_version_by_alias("grid", tracking.CHAMPION).version in (1, "1")
    assert register_best("grid", better, 0.7) == 3
    assert int(client.get_model_version_by_alias("grid", tracking.CHAMPION).version) == 3
    assert register_best("grid", "run-without-model", 0.9) is None
