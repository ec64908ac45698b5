"""One trial of a study: its settings (a grid point or values sampled from the space), its
:class:`FitConfig`, ``run_fit`` as an MLflow child run of the study's parent run, and
``val/best_acc`` back to Optuna (never a test figure).

A trial's run is tagged with how the trial ended. A trial pruned, or run again because its worker
died or was stopped, is handled so that the MLflow UI shows failures only for trials that failed. A
trial whose tracking server or database stays down past MLflow's retries fails and is queued again.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna_integration import PyTorchLightningPruningCallback

from ferlight import tracking
from ferlight.errors import FerlightError, first_line
from ferlight.study.spec import POINT, StudySpec, applies, setting_value
from ferlight.training.config import FitConfig
from ferlight.training.run import run_fit

OBJECTIVE = "val/best_acc"
PRUNING_MONITOR = "val/acc"
SETTINGS = "settings"  # trial user attribute: the values the trial trains with, for each searched setting
MLFLOW_RUN = "mlflow_run_id"  # trial user attribute: the trial's MLflow run
TRIAL_STATE = "trial_state"  # MLflow tag of a trial's run: running, complete, pruned or failed
TRIAL_ENV = "FERLIGHT_SWEEP_TRIAL"  # set while a worker runs a trial: the trial's number
_log = logging.getLogger(__name__)


class TrialFailed(RuntimeError):
    """A trial's training raised: Optuna marks the trial FAIL and the study goes on."""


def name_objective(study: optuna.Study) -> None:
    """Name the objective :data:`OBJECTIVE` (optuna-dashboard and Optuna's plots show it, not "Objective 0")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE])


def trial_config(base: FitConfig, settings: Mapping[str, Any], run_name: str) -> FitConfig:
    """``base`` with the trial's settings; model options the architecture lacks are dropped."""
    return base.with_settings({**settings, "run_name": run_name, "resume": None})


def settings_of(trial: optuna.trial.FrozenTrial) -> dict:
    """The settings a trial ran with (its Optuna params, until it has them)."""
    return trial.user_attrs.get(SETTINGS, trial.params)


def end_trial_run(tracking_uri: str | None, run_id: str | None, state: str) -> None:
    """Tag a trial's run with how the trial ended; a pruned run (which Lightning ended as FAILED)
    is FINISHED, and a failed run still RUNNING (its worker died) FAILED."""
    if run_id is None:
        return
    client = tracking.client(tracking_uri)
    tracking.set_tags(client, run_id, {TRIAL_STATE: state})
    if state == "pruned":
        tracking.set_status(client, run_id, "FINISHED")
    elif state == "failed" and tracking.run_status(client, run_id) == "RUNNING":
        tracking.set_status(client, run_id, "FAILED")


def retry_later(study: optuna.Study, number: int) -> None:
    """Queue a copy of trial ``number`` (same settings), as Optuna does for a dead worker's trial."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    RetryHeartbeatStaleTrialCallback()(study, frozen)


class RetryStaleTrial:
    """The storage's heartbeat callback: run a dead worker's trial again, and mark its run FAILED."""

    def __init__(self, tracking_uri: str | None) -> None:
        self.tracking_uri = tracking_uri

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        RetryHeartbeatStaleTrialCallback()(study, trial)
        end_trial_run(self.tracking_uri, trial.user_attrs.get(MLFLOW_RUN), "failed")


class PruningCallback(PyTorchLightningPruningCallback):
    """Optuna's pruning callback that also records the trial's MLflow run id.

    A pruned trial raises ``optuna.TrialPruned`` inside ``trainer.fit``, and Lightning then ends
    the run as FAILED; knowing the run lets the objective set it FINISHED and tag it pruned.
    """

    def __init__(self, trial: optuna.Trial, monitor: str = PRUNING_MONITOR) -> None:
        super().__init__(trial, monitor)
        self.trial = trial
        self.run_id: str | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.is_global_zero:  # other DDP ranks have no run
            self.run_id = trainer.logger.run_id
            self.trial.set_user_attr(MLFLOW_RUN, self.run_id)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Close the progress bars, which Lightning leaves open when a trial is pruned (they would be
        drawn again during later trials and at exit: optuna/optuna#3783). Pruning happens at the end
        of a validation, so end that validation's bar, then the training bar, as the bar's own hooks do."""
        bar = trainer.progress_bar_callback
        if isinstance(exception, optuna.TrialPruned) and bar is not None:
            bar.on_validation_end(trainer, pl_module)
            bar.on_train_end(trainer, pl_module)


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    low, high, step, log_scale = distribution.low, distribution.high, distribution.step, distribution.log
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, low, high, step=step, log=log_scale)
    return trial.suggest_float(name, low, high, step=step, log=log_scale)


def sample_settings(spec: StudySpec, base: FitConfig, trial: optuna.Trial) -> dict:
    """A trial's settings: a grid point, or values from the space (arch first, since a model option
    is sampled only for architectures it applies to)."""
    if spec.points:
        return dict(spec.points[trial.suggest_categorical(POINT, list(range(len(spec.points))))])
    settings = {"arch": _suggest(trial, "arch", spec.space["arch"])} if "arch" in spec.space else {}
    arch = settings.get("arch", base.arch)
    for name, distribution in spec.space.items():
        if name != "arch" and applies(name, arch):
            settings[name] = _suggest(trial, name, distribution)
    return settings


def run_name(trial: optuna.Trial | optuna.trial.FrozenTrial, study_name: str) -> str:
    return f"{study_name}-{trial.number:03d}"


def join_trial(study: optuna.Study, spec: StudySpec, base: FitConfig, number: int) -> None:
    """Train as another DDP rank of trial ``number``, which a worker is running.

    Lightning starts a DDP fit's other ranks by running the worker's command again; the worker
    names its trial in ``TRIAL_ENV``, so that the command joins that trial instead of working the
    study. Every rank has the pruning callback: Optuna's decides on rank 0 and tells the others.
    """
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    settings = sample_settings(spec, base, optuna.trial.FixedTrial(frozen.params))
    trial = optuna.trial.Trial(study, frozen._trial_id)
    run_fit(trial_config(base, settings, run_name(frozen, study.study_name)), callbacks=[PruningCallback(trial)])


class Objective:
    """One trial: settings from the sampler, ``run_fit`` as a child run, ``val/best_acc`` back.

    ``start_lock`` is held by the worker from "is there work left?" until the trial has its
    settings; the objective releases it then, so the next worker may start.
    """

    def __init__(self, spec: StudySpec, base: FitConfig, parent_run_id: str, start_lock: tracking.DatabaseLock) -> None:
        self.spec = spec
        self.base = base
        self.parent_run_id = parent_run_id
        self.start_lock = start_lock

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            settings = sample_settings(self.spec, self.base, trial)
        finally:
            self.start_lock.release()  # the trial has its settings: the next worker may start
        cfg = trial_config(self.base, settings, run_name(trial, trial.study.study_name))
        trial.set_user_attr(SETTINGS, {name: setting_value(cfg, name) for name in self.spec.searched})
        pruning = PruningCallback(trial)
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "optuna.study_name": trial.study.study_name,
            "trial_number": str(trial.number),
            TRIAL_STATE: "running",
        }
        os.environ[TRIAL_ENV] = str(trial.number)  # for DDP ranks started by running this command again
        try:
            result = run_fit(cfg, callbacks=[pruning], tags=tags)
            pruning.check_pruned()  # a DDP trial ends its fit when pruned; the verdict is in the storage
        except optuna.TrialPruned:
            end_trial_run(cfg.tracking_uri, pruning.run_id, "pruned")
            raise
        except (FerlightError, KeyboardInterrupt, SystemExit) as err:
            # Not the trial's fault (bad data, Ctrl-C): queue it again for the next run, and stop.
            end_trial_run(cfg.tracking_uri, pruning.run_id, "failed")
            retry_later(trial.study, trial.number)
            if isinstance(err, SystemExit):  # Lightning's answer to Ctrl-C; Optuna would leave it RUNNING
                raise KeyboardInterrupt from err
            raise
        except Exception as err:
            if not tracking.unreachable(err):
                end_trial_run(cfg.tracking_uri, pruning.run_id, "failed")
                raise TrialFailed(f"{type(err).__name__}: {err}") from err
            # The tracking server or database stayed down past every retry: not the trial's fault.
            _log.warning("trial %d: %s; queued to run again", trial.number, first_line(err))
            try:
                end_trial_run(cfg.tracking_uri, pruning.run_id, "failed")
            except Exception:  # still down: the run stays RUNNING, its trial is run again
                pass
            retry_later(trial.study, trial.number)
            raise TrialFailed(f"{type(err).__name__}: {first_line(err)}") from err
        finally:
            del os.environ[TRIAL_ENV]
        if OBJECTIVE not in result.metrics:
            end_trial_run(cfg.tracking_uri, result.run_id, "failed")
            raise TrialFailed(f"the run recorded no {OBJECTIVE}")
        end_trial_run(cfg.tracking_uri, result.run_id, "complete")
        return result.metrics[OBJECTIVE]
