"""Optuna studies over the options of ``ferlight.fit``, each trial an MLflow run under one parent.

A study file (YAML, see docs/sweeps.md) names a sampler and a pruner, ``fixed`` options for every
trial, and either a ``grid`` (blocks of option lists, expanded into points: Optuna's GridSampler
then walks the point index, since the blocks need not form one product) or a ``space`` for TPE or
random search, with ``enqueue``d points (the paper's grid) tried first. A trial's config is the
command line's :class:`FitConfig` with the trial's settings applied; its objective is
``val/best_acc`` from :func:`ferlight.training.run.run_fit` (never a test figure).

Storage is an Optuna RDB (SQLite by default, PostgreSQL or MySQL across machines), the only kind
with heartbeats in Optuna 5: a trial whose worker died is failed after the grace period and run
again. Workers on one machine share a file lock from "is there work left?" until the trial they
start has its settings, so no grid point runs twice and no trial is lost.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Mapping, Optional

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from ferlight.tracking import store as tracking
from ferlight.training.config import MODEL_FLAGS, FitConfig
from ferlight.errors import ConfigError, FerlightError
from ferlight.models import model_options
from ferlight.tracking.sqlite_lock import SqliteLock, sqlite_file
from ferlight.study.spec import (
    POINT,
    StudySpec,
    build_pruner,
    build_sampler,
    within,
)
from ferlight.training.run import run_fit

log = logging.getLogger(__name__)

OBJECTIVE = "val/best_acc"
PRUNING_MONITOR = "val/acc"
SETTINGS = "settings"  # trial user attribute: the FitConfig values the trial ran with
MLFLOW_RUN = "mlflow_run_id"  # trial user attribute: the trial's MLflow run
PARENT_RUN = "mlflow_parent_run_id"  # study user attribute, set last by the study's creator
SEARCH = "search"  # study user attribute: what defines the study's trials, to refuse a changed file
TRIAL_STATE = "trial_state"  # MLflow tag of a trial's run: running, complete, pruned or failed
PARENT_WAIT_S = 120

@dataclass
class SweepOptions:
    """How to run a study (the FitConfig options say how to train each trial)."""

    n_trials: Optional[int] = field(
        default=None,
        metadata={"help": "stop once the study holds this many trials (default: the file's n_trials; a grid stops "
                  "when every point is done)"},
    )
    timeout: Optional[float] = field(default=None, metadata={"help": "start no new trial after this many seconds"})
    storage: Optional[str] = field(
        default=None, metadata={"help": "Optuna RDB URL (default: sqlite:///optuna.db beside the MLflow store)"}
    )
    study_name: Optional[str] = field(default=None, metadata={"help": "study name (default: the file's study_name)"})
    workers: int = field(default=1, metadata={"help": "worker processes on this machine sharing the study"})
    heartbeat_interval: int = field(
        default=60, metadata={"help": "seconds between a running trial's heartbeats (a dead worker's trial is retried)"}
    )
    grace_period: Optional[int] = field(
        default=None, metadata={"help": "seconds without heartbeat before a trial counts as dead (default: 2 intervals)"}
    )


class TrialFailed(RuntimeError):
    """A trial's training raised: Optuna marks the trial FAIL and the study goes on."""


def default_storage(tracking_uri: str | None = None) -> str:
    """``sqlite:///optuna.db`` in the folder of a SQLite MLflow store, else in the working folder."""
    db = sqlite_file(tracking.resolve_tracking_uri(tracking_uri))
    return f"sqlite:///{(db.parent if db else Path.cwd()) / 'optuna.db'}"


def build_storage(url: str, options: SweepOptions, tracking_uri: str | None = None) -> RDBStorage:
    """An RDB storage with heartbeats: a trial silent for the grace period is failed and retried."""
    db = sqlite_file(url)
    engine_kwargs = {"connect_args": {"timeout": 60}} if db else {}  # workers wait for SQLite's lock
    lock = SqliteLock(url)
    try:
        lock.acquire()  # two workers creating the schema at once would race
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=options.heartbeat_interval,
            grace_period=options.grace_period,
            heartbeat_stale_trial_callback=_RetryStaleTrial(tracking_uri),
        )
    except Exception as err:  # SQLAlchemy and drivers raise many types for an unusable URL
        text = str(err).strip().splitlines()
        raise ConfigError(
            f"--storage {_masked(url)}: {type(err).__name__}: {text[0] if text else ''} "
            "(expected sqlite:///FILE, postgresql://... or mysql+pymysql://...)"
        ) from None
    finally:
        lock.release()


def _masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url


# ----------------------------------------------------------------------------------------------
# Trials


def trial_config(base: FitConfig, settings: Mapping[str, Any], run_name: str) -> FitConfig:
    """``base`` with the trial's settings; model options the architecture lacks fall back to None."""
    return base.with_settings({**settings, "run_name": run_name, "resume": None})


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    low, high, step, log_scale = distribution.low, distribution.high, distribution.step, distribution.log
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, low, high, step=step, log=log_scale)
    return trial.suggest_float(name, low, high, step=step, log=log_scale)


def _mlflow(tracking_uri: str | None):
    import mlflow

    return mlflow.MlflowClient(tracking.resolve_tracking_uri(tracking_uri))


def _end_run(client, run_id: str | None, state: str) -> None:
    """Tag a trial's run; a pruned run (which Lightning ended as FAILED) is FINISHED."""
    if run_id is None:
        return
    client.set_tag(run_id, TRIAL_STATE, state)
    if state == "pruned":
        client.set_terminated(run_id, "FINISHED")
    elif state == "failed" and client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, "FAILED")


def _retry_later(study: optuna.Study, number: int) -> None:
    """Queue a copy of trial ``number`` (same settings), as Optuna does for a dead worker's trial."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    RetryHeartbeatStaleTrialCallback()(study, frozen)


class _RetryStaleTrial:
    """Heartbeat callback: run a dead worker's trial again, and mark its MLflow run FAILED."""

    def __init__(self, tracking_uri: str | None) -> None:
        self.tracking_uri = tracking_uri

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        RetryHeartbeatStaleTrialCallback()(study, trial)
        _end_run(_mlflow(self.tracking_uri), trial.user_attrs.get(MLFLOW_RUN), "failed")


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


class Objective:
    """One trial: settings from the sampler, ``run_fit`` as a child run, ``val/best_acc`` back."""

    def __init__(self, spec: StudySpec, base: FitConfig, parent_run_id: str, start_lock: SqliteLock) -> None:
        self.spec = spec
        self.base = base
        self.parent_run_id = parent_run_id
        self.start_lock = start_lock

    def sample(self, trial: optuna.Trial) -> dict:
        """The trial's settings: a grid point, or values from the space (arch first, since the
        model options apply only to the architectures that have them)."""
        if self.spec.points:
            return dict(self.spec.points[trial.suggest_categorical(POINT, list(range(len(self.spec.points))))])
        space = self.spec.space
        arch = _suggest(trial, "arch", space["arch"]) if "arch" in space else self.base.arch
        settings = {"arch": arch} if "arch" in space else {}
        for name, distribution in space.items():
            if name != "arch" and (name not in MODEL_FLAGS or name in model_options(arch)):
                settings[name] = _suggest(trial, name, distribution)
        return settings

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            settings = self.sample(trial)
        finally:
            self.start_lock.release()  # the trial has its settings: the next worker may start
        cfg = trial_config(self.base, settings, f"{trial.study.study_name}-{trial.number:03d}")
        trial.set_user_attr(SETTINGS, {name: getattr(cfg, name) for name in self.spec.searched})
        client = _mlflow(cfg.tracking_uri)
        pruning = PruningCallback(trial)
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "optuna.study_name": trial.study.study_name,
            "trial_number": str(trial.number),
            TRIAL_STATE: "running",
        }
        try:
            result = run_fit(cfg, callbacks=[pruning], tags=tags)
        except optuna.TrialPruned:
            _end_run(client, pruning.run_id, "pruned")
            raise
        except (FerlightError, KeyboardInterrupt, SystemExit) as err:
            # Not the trial's fault (bad data, Ctrl-C): queue it again for the next run, and stop.
            _end_run(client, pruning.run_id, "failed")
            _retry_later(trial.study, trial.number)
            if isinstance(err, SystemExit):  # Lightning's answer to Ctrl-C; Optuna would leave it RUNNING
                raise KeyboardInterrupt from err
            raise
        except Exception as err:
            _end_run(client, pruning.run_id, "failed")
            raise TrialFailed(f"{type(err).__name__}: {err}") from err
        if OBJECTIVE not in result.metrics:
            _end_run(client, result.run_id, "failed")
            raise TrialFailed(f"the run recorded no {OBJECTIVE}")
        _end_run(client, result.run_id, "complete")
        return result.metrics[OBJECTIVE]


# ----------------------------------------------------------------------------------------------
# Studies


def _search_fingerprint(spec: StudySpec) -> str:
    return json.dumps(
        {"points": spec.points, "space": {k: distribution_to_json(d) for k, d in spec.space.items()}}, sort_keys=True
    )


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another process created it meanwhile
        return client.get_experiment_by_name(name).experiment_id


def _create_parent_run(spec: StudySpec, base: FitConfig, study: optuna.Study, storage_url: str) -> str:
    client = _mlflow(tracking.ensure_store(base.tracking_uri))
    run = client.create_run(
        _experiment_id(client, base.experiment),
        run_name=study.study_name,
        tags={"optuna.study_name": study.study_name, "optuna.storage": _masked(storage_url), "ferlight.kind": "study"},
    )
    run_id = run.info.run_id
    params = {"sampler": spec.sampler, "pruner": spec.pruner, "searched": ", ".join(spec.searched)}
    if spec.points:
        params["grid_points"] = len(spec.points)
    for name, value in params.items():
        client.log_param(run_id, name, value)
    client.log_artifact(run_id, str(spec.path))
    return run_id


def _run_exists(client, run_id: str) -> bool:
    try:
        client.get_run(run_id)
    except Exception:  # MlflowException: not in this tracking store (moved or deleted)
        return False
    return True


def _enqueue_points(study: optuna.Study, spec: StudySpec, base: FitConfig) -> None:
    """Queue the file's points; options a point leaves out take the base config's value (the
    model's default for model options) where that lies in the space, so that the paper's points
    run with the paper's other settings."""
    for point in spec.enqueue:
        cfg = base.with_settings(point)
        params = dict(point)
        for name, distribution in spec.space.items():
            if name in MODEL_FLAGS:
                if name not in model_options(cfg.arch):
                    continue
                value = cfg.model_options.get(name, model_options(cfg.arch)[name])
            else:
                value = getattr(cfg, name)
            if name not in params and within(distribution, value):
                params[name] = value
        study.enqueue_trial(params)


def open_study(spec: StudySpec, base: FitConfig, storage_url: str, options: SweepOptions) -> optuna.Study:
    """Create the study (with its MLflow parent run and queued points) or load it to resume.

    Study creation is atomic in an RDB, so with several workers exactly one creates; the others
    wait until it has published the parent run id, which it does last.
    """
    storage = build_storage(storage_url, options, base.tracking_uri)
    name = options.study_name or spec.name
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", sampler=build_sampler(spec),
            pruner=build_pruner(spec),
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = _load_study(spec, options, storage)
        _wait_until_ready(study)
    else:
        study.set_user_attr(SEARCH, _search_fingerprint(spec))
        _enqueue_points(study, spec, base)
    if study.user_attrs.get(SEARCH) != _search_fingerprint(spec):
        raise ConfigError(
            f"{spec.path}: study {name!r} in {_masked(storage_url)} was made with another grid or space; "
            "pass --study-name to start a new study"
        )
    client = _mlflow(base.tracking_uri)
    parent = study.user_attrs.get(PARENT_RUN)
    if parent is None or not _run_exists(client, parent):  # a new study, another tracking store, or a dead creator
        parent = _create_parent_run(spec, base, study, storage_url)
        study.set_user_attr(PARENT_RUN, parent)
    client.update_run(parent, status="RUNNING")
    return study


def _load_study(spec: StudySpec, options: SweepOptions, storage: RDBStorage) -> optuna.Study:
    name = options.study_name or spec.name
    return optuna.load_study(study_name=name, storage=storage, sampler=build_sampler(spec), pruner=build_pruner(spec))


def _wait_until_ready(study: optuna.Study) -> None:
    deadline = time.monotonic() + PARENT_WAIT_S
    while PARENT_RUN not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)


def _work_left(study: optuna.Study, spec: StudySpec, target: int | None) -> bool:
    """Whether to start another trial: below ``target`` trials, and for a grid, a point nobody
    has taken or a trial queued again. Dead workers' trials are failed (and queued) first."""
    fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    retried = {number for t in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    started = sum(t.state != TrialState.WAITING and t.number not in retried for t in trials)
    if target is not None and started >= target:
        return False
    if not spec.points:
        return True
    taken = {t.params[POINT] for t in trials if POINT in t.params}
    return len(taken) < len(spec.points) or any(t.state == TrialState.WAITING for t in trials)


def work(study: optuna.Study, spec: StudySpec, base: FitConfig, options: SweepOptions, storage_url: str) -> None:
    """Run trials of ``study`` until the grid is done, ``n_trials`` are reached or time is up."""
    lock = SqliteLock(storage_url)  # held from "is there work left?" until the trial has its settings
    objective = Objective(spec, base, study.user_attrs[PARENT_RUN], lock)
    target = options.n_trials if options.n_trials is not None else spec.n_trials
    deadline = time.monotonic() + options.timeout if options.timeout else float("inf")
    while time.monotonic() < deadline:
        lock.acquire()  # released by the objective once the trial has its settings
        try:
            if not _work_left(study, spec, target):
                return
            study.optimize(objective, n_trials=1, catch=(TrialFailed,))
        finally:
            lock.release()


def _work_in_process(spec: StudySpec, base: FitConfig, options: SweepOptions, storage_url: str, threads: int) -> None:
    """A worker process: its own storage connection and torch threads."""
    import torch

    torch.set_num_threads(threads)
    study = _load_study(spec, options, build_storage(storage_url, options, base.tracking_uri))
    work(study, spec, base, options, storage_url)


def check_options(base: FitConfig, options: SweepOptions) -> None:
    """ConfigError for options a sweep cannot honour."""
    for name, low in (("n_trials", 0), ("workers", 1), ("heartbeat_interval", 1), ("grace_period", 1)):
        value = getattr(options, name)
        if value is not None and value < low:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if options.timeout is not None and options.timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {options.timeout}")
    if "ddp" in base.strategy or base.num_nodes > 1 or not _one_device(base.devices):
        raise ConfigError(
            "--devices/--strategy/--num-nodes: a sweep trains each trial in one process; "
            "run one worker per device instead (see docs/sweeps.md)"
        )


def _one_device(devices: int | str) -> bool:
    """Whether Lightning's ``devices`` names a single device (1, "1", "0," or "[2]")."""
    if isinstance(devices, int):
        return devices == 1
    ids = [d for d in str(devices).strip("[]").split(",") if d.strip()]
    return str(devices).strip() == "1" or (("," in str(devices) or "[" in str(devices)) and len(ids) == 1)


def run_sweep(spec: StudySpec, base: FitConfig, options: SweepOptions) -> optuna.Study:
    """Open (or resume) the study, run its trials in ``options.workers`` processes, summarise.

    The summary (best settings, plots) goes to the parent run even after Ctrl-C, which then
    propagates as KeyboardInterrupt.
    """
    check_options(base, options)
    storage_url = options.storage or default_storage(base.tracking_uri)
    study = open_study(spec, base, storage_url, options)
    try:
        if options.workers == 1:
            work(study, spec, base, options, storage_url)
        else:
            threads = max(1, len(os.sched_getaffinity(0)) // options.workers)
            with ProcessPoolExecutor(options.workers, mp_context=get_context("spawn")) as pool:
                jobs = [
                    pool.submit(_work_in_process, spec, base, options, storage_url, threads)
                    for _ in range(options.workers)
                ]
                for job in jobs:
                    job.result()
    finally:
        summarize(study, base.tracking_uri)
    return study


# ----------------------------------------------------------------------------------------------
# Summary


def _settings_of(trial: optuna.trial.FrozenTrial) -> dict:
    return trial.user_attrs.get(SETTINGS, trial.params)


def summarize(study: optuna.Study, tracking_uri: str | None = None) -> None:
    """Best settings (tags ``best.<name>``), ``best/val_acc`` and plots on the parent run.

    Tags rather than params: MLflow params are write-once, and the best trial changes as a study
    resumes.
    """
    client = _mlflow(tracking_uri)
    parent = study.user_attrs[PARENT_RUN]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best = study.best_trial
        for name, value in _settings_of(best).items():
            client.set_tag(parent, f"best.{name}", str(value))
        client.set_tag(parent, "best.trial_number", str(best.number))
        client.set_tag(parent, "best.run_id", str(best.user_attrs.get(MLFLOW_RUN)))
        client.log_metric(parent, "best/val_acc", best.value, step=len(complete))
        with tempfile.TemporaryDirectory() as tmp:
            for path in _plots(study, Path(tmp)):
                client.log_artifact(parent, str(path))
    client.set_terminated(parent, "FINISHED")


def _plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimisation history and parameter importances (from the settings, for a grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots = [("optimization_history.png", optuna_plots.plot_optimization_history, study)]
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
        plots.append(("param_importances.png", optuna_plots.plot_param_importances, _importance_study(study)))
    files = []
    for name, plot, source in plots:
        try:
            ax = plot(source)
        except Exception as err:  # e.g. no setting varies yet: the summary goes on without it
            log.warning("no %s: %s", name, err)
            continue
        ax.figure.savefig(folder / name, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        files.append(folder / name)
    return files


def _importance_study(study: optuna.Study) -> optuna.Study:
    """For a grid, whose only parameter is the point index, an in-memory copy of the complete
    trials with their settings as categorical parameters; other studies as they are."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not any(POINT in t.params for t in complete):
        return study
    choices: dict[str, list] = {}
    for trial in complete:
        for name, value in _settings_of(trial).items():
            if value not in choices.setdefault(name, []):
                choices[name].append(value)
    copy = optuna.create_study(direction="maximize")
    for trial in complete:
        settings = _settings_of(trial)
        copy.add_trial(
            optuna.trial.create_trial(
                params=settings,
                distributions={name: CategoricalDistribution(choices[name]) for name in settings},
                value=trial.value,
            )
        )
    return copy


def trials_table(study: optuna.Study) -> str:
    """The trials as text: number, state, validation accuracy and settings; the best marked *."""
    trials = study.get_trials(deepcopy=False)
    best = study.best_trial.number if any(t.state == TrialState.COMPLETE for t in trials) else None
    history = RetryHeartbeatStaleTrialCallback.retry_history  # the trials a retry stands for
    retries = {history(t)[-1]: t.number for t in trials if history(t)}
    rows = [("trial", "state", "val acc", "settings")]
    for t in trials:
        mark = "*" if t.number == best else ""
        state = t.state.name.lower() + (f" (rerun as {retries[t.number]})" if t.number in retries else "")
        value = f"{t.value:.4f}" if t.value is not None else "-"
        settings = " ".join(f"{k}={v}" for k, v in _settings_of(t).items())
        rows.append((f"{t.number}{mark}", state, value, settings))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows)
