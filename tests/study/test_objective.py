"""One trial: its config and settings, how it samples model options, and how its MLflow run ends
when it completes, is pruned, fails, or is stopped (then queued to run again)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest
import requests
from optuna.trial import FixedTrial, TrialState

from ferlight import tracking
from ferlight.errors import DataError
from ferlight.study.objective import Objective, RetryStaleTrial, TrialFailed, sample_settings, trial_config
from ferlight.study.spec import StudySpec
from ferlight.training.config import FitConfig


def test_trial_config_drops_model_options_the_architecture_lacks():
    base = FitConfig(model_options={"dropout_placement": "every", "dropout": 0.3}, run_name="base", resume="auto")
    vgg = trial_config(base, {"arch": "vgg11", "lr": 0.01}, "s-001")
    resnet = trial_config(base, {"arch": "resnet18"}, "s-002")
    options = vgg.model_options
    assert (options["dropout_placement"], options["dropout"], vgg.lr, vgg.run_name, vgg.resume) == ("every", 0.3, 0.01, "s-001", None)
    assert (resnet.model_options.get("dropout_placement"), resnet.model_options["dropout"]) == (None, 0.3)  # ResNets have dropout, not its placement


def spec(points=(), space=None) -> StudySpec:
    return StudySpec(Path("s.yaml"), "s", "grid" if points else "tpe", {}, "none", {}, None, {}, tuple(points), space or {})


class NoLock:
    def release(self) -> None:
        pass


def test_a_grid_trial_takes_its_point_and_a_search_samples_only_options_its_architecture_has():
    assert sample_settings(spec(points=[{"lr": 0.1}, {"lr": 0.2}]), FitConfig(), FixedTrial({"point": 1})) == {"lr": 0.2}
    space = {"arch": optuna.distributions.CategoricalDistribution(["vgg11", "resnet18"]),
             "dropout_placement": optuna.distributions.CategoricalDistribution(["none", "every"]),
             "dropout": optuna.distributions.FloatDistribution(0.0, 0.5)}
    chosen = {"arch": "resnet18", "dropout_placement": "every", "dropout": 0.2}
    assert sample_settings(spec(space=space), FitConfig(), FixedTrial(chosen)) == {"arch": "resnet18", "dropout": 0.2}
    assert sample_settings(spec(space=space), FitConfig(), FixedTrial({**chosen, "arch": "vgg11"})) == {**chosen, "arch": "vgg11"}


@pytest.fixture
def study(mlflow_store, fake_fit):
    """A grid study of two learning rates whose trials run under the parent run it returns."""
    study = optuna.create_study(study_name="s", direction="maximize")
    parent = tracking.create_run(tracking.client(), "ferlight", "s", {})
    objective = Objective(spec(points=[{"lr": 1e-3}, {"lr": 3e-3}]), FitConfig(arch="vgg11"), parent, NoLock())
    return study, objective, parent


def run_of(trial) -> mlflow.entities.Run:
    return tracking.client().get_run(trial.user_attrs["mlflow_run_id"])


def test_a_complete_trial_is_a_finished_child_run_with_the_settings_it_trained_with(study):
    study, objective, parent = study
    study.enqueue_trial({"point": 1})
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    run = run_of(trial)
    assert trial.value == pytest.approx(64 / 1000 + 3e-3) and trial.user_attrs["settings"] == {"lr": 3e-3}
    assert (run.info.status, run.data.tags["trial_state"], run.data.tags["mlflow.parentRunId"]) == ("FINISHED", "complete", parent)
    assert (run.info.run_name, run.data.tags["trial_number"]) == ("s-000", "0")


def _server_down() -> Exception:
    """What MLflow raises once its retries of an unanswered request run out (the cause as context)."""
    from mlflow.exceptions import MlflowException

    try:
        try:
            raise requests.ConnectionError("Connection refused")
        except requests.ConnectionError as err:
            raise MlflowException(f"API request to http://127.0.0.1:5000/api failed with exception {err}")
    except MlflowException as err:
        return err


@pytest.mark.parametrize("raised,expected,status,queued", [
    (_server_down(), TrialFailed, "FAILED", True),  # an outage, not the trial's fault: queued, the study goes on
    (optuna.TrialPruned(), optuna.TrialPruned, "FINISHED", False),  # Lightning ended it FAILED: pruning is no failure
    (RuntimeError("nan loss"), TrialFailed, "FAILED", False),  # the settings' fault: not tried again
    (DataError("bad data"), DataError, "FAILED", True),  # not the trial's fault: queued for the next run
    (SystemExit(1), KeyboardInterrupt, "FAILED", True),  # Lightning's answer to Ctrl-C
])
def test_a_trial_that_does_not_complete_ends_its_run_by_its_cause(study, fake_fit, raised, expected, status, queued):
    study, objective, _ = study
    fake_fit.raises[1e-3] = raised
    study.enqueue_trial({"point": 0})
    with pytest.raises(expected):
        objective(study.ask())
    run = run_of(study.trials[0])
    assert run.info.status == status
    assert run.data.tags["trial_state"] == ("pruned" if expected is optuna.TrialPruned else "failed")
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.params for t in waiting] == ([{"point": 0}] if queued else [])


def test_a_dead_workers_trial_is_queued_again_and_its_run_failed(study):
    study, _, _ = study
    stale = study.ask({"point": optuna.distributions.CategoricalDistribution([0, 1])})
    stale.set_user_attr("mlflow_run_id", tracking.create_run(tracking.client(), "ferlight", "stale", {}))
    frozen = study.trials[stale.number]
    RetryStaleTrial(None)(study, frozen)  # what the storage calls once the trial's heartbeat is stale
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs["failed_trial"] == stale.number and retry.params == frozen.params
    assert run_of(frozen).info.status == "FAILED" and run_of(frozen).data.tags["trial_state"] == "failed"
