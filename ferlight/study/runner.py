"""Run a study: open it (or resume it), with its MLflow parent run and queued points, run its
trials in one or more worker processes, and summarise it on the parent run.

The first process to create a study (creation is atomic in an RDB) makes its parent run and
publishes the run id last; the others wait for it. Workers, on one machine or many, share a lock in
the study's database from "is there work left?" until the trial they start has its settings, so no
grid point runs twice and no more trials start than asked for; a worker with nothing left to start
waits while other trials run, to run again any whose worker dies.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Optional

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from ferlight import tracking
from ferlight.errors import ConfigError
from ferlight.study.objective import TRIAL_ENV, Objective, name_objective, RetryStaleTrial, TrialFailed, join_trial
from ferlight.study.spec import POINT, StudySpec, applies, build_pruner, build_sampler, setting_value, within
from ferlight.study.storage import build_storage, default_storage, masked
from ferlight.study.summary import summarize
from ferlight.training.config import FitConfig

PARENT_RUN = "mlflow_parent_run_id"  # study user attribute, set last by the study's creator
SEARCH = "search"  # study user attribute: what defines the study's trials, to refuse a changed file
PARENT_WAIT_S = 120  # how long a worker waits for the creator to publish the parent run


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


def check_options(base: FitConfig, options: SweepOptions) -> None:
    """ConfigError for options a sweep cannot honour."""
    for name, low in (("n_trials", 0), ("workers", 1), ("heartbeat_interval", 1), ("grace_period", 1)):
        value = getattr(options, name)
        if value is not None and value < low:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if options.timeout is not None and options.timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {options.timeout}")
    if any(name in base.strategy for name in ("spawn", "fork", "notebook")) or base.num_nodes > 1:
        raise ConfigError(
            f"--strategy {base.strategy} --num-nodes {base.num_nodes}: a sweep's trials train on one machine, "
            "with --strategy ddp for several devices; run one worker per machine (see docs/sweeps.md)"
        )
    if "ddp" not in base.strategy and not _one_device(base.devices):
        raise ConfigError(f"--devices {base.devices}: a trial on several devices needs --strategy ddp")
    if "ddp" in base.strategy and options.workers > 1:
        raise ConfigError("--workers: a sweep of DDP trials runs one worker on a machine (its trials use its devices)")


def _one_device(devices: int | str) -> bool:
    """Whether Lightning's ``devices`` names a single device (1, "1", "0," or "[2]")."""
    if isinstance(devices, int):
        return devices == 1
    ids = [d for d in str(devices).strip("[]").split(",") if d.strip()]
    return str(devices).strip() == "1" or (("," in str(devices) or "[" in str(devices)) and len(ids) == 1)


# ----------------------------------------------------------------------------------------------
# Opening a study


def _storage(url: str, base: FitConfig, options: SweepOptions) -> RDBStorage:
    return build_storage(url, options.heartbeat_interval, options.grace_period, RetryStaleTrial(base.tracking_uri))


def _load_study(spec: StudySpec, options: SweepOptions, storage: RDBStorage) -> optuna.Study:
    name = options.study_name or spec.name
    return optuna.load_study(study_name=name, storage=storage, sampler=build_sampler(spec), pruner=build_pruner(spec))


def _search_fingerprint(spec: StudySpec) -> str:
    return json.dumps(
        {"points": spec.points, "space": {k: distribution_to_json(d) for k, d in spec.space.items()}}, sort_keys=True
    )


def open_study(spec: StudySpec, base: FitConfig, storage_url: str, options: SweepOptions) -> optuna.Study:
    """Create the study (with its MLflow parent run and queued points) or load it to resume.

    Study creation is atomic in an RDB, so with several workers exactly one creates; the others
    wait until it has published the parent run id, which it does last.
    """
    storage = _storage(storage_url, base, options)
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
        name_objective(study)
        study.set_user_attr(SEARCH, _search_fingerprint(spec))
        _enqueue_points(study, spec, base)
    if study.user_attrs.get(SEARCH) != _search_fingerprint(spec):
        raise ConfigError(
            f"{spec.path}: study {name!r} in {masked(storage_url)} was made with another grid or space; "
            "pass --study-name to start a new study"
        )
    client = tracking.client(base.tracking_uri)
    parent = study.user_attrs.get(PARENT_RUN)
    if parent is None or not tracking.run_exists(client, parent):  # a new study, another store, or a dead creator
        parent = _create_parent_run(spec, base, study, storage_url)
        study.set_user_attr(PARENT_RUN, parent)
    tracking.set_status(client, parent, "RUNNING")
    return study


def _wait_until_ready(study: optuna.Study) -> None:
    deadline = time.monotonic() + PARENT_WAIT_S
    while PARENT_RUN not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)


def _create_parent_run(spec: StudySpec, base: FitConfig, study: optuna.Study, storage_url: str) -> str:
    """The study's MLflow run: what it searches as params, the study file as an artifact."""
    client = tracking.client(tracking.ensure_store(base.tracking_uri))
    tags = {"optuna.study_name": study.study_name, "optuna.storage": masked(storage_url), "ferlight.kind": "study"}
    run_id = tracking.create_run(client, base.experiment, study.study_name, tags)
    params = {"sampler": spec.sampler, "pruner": spec.pruner, "searched": ", ".join(spec.searched)}
    if spec.points:
        params["grid_points"] = len(spec.points)
    tracking.log_params(client, run_id, params)
    tracking.log_artifacts(client, run_id, [spec.path])
    return run_id


def _enqueue_points(study: optuna.Study, spec: StudySpec, base: FitConfig) -> None:
    """Queue the file's points; a setting a point leaves out takes the value the base config trains
    with (a model option: the model's default) where that lies in the space, so that the paper's
    points run with the paper's other settings."""
    for point in spec.enqueue:
        cfg = base.with_settings(point)
        params = dict(point)
        for name, distribution in spec.space.items():
            if name in params or not applies(name, cfg.arch):
                continue
            value = setting_value(cfg, name)
            if within(distribution, value):
                params[name] = value
        study.enqueue_trial(params)


# ----------------------------------------------------------------------------------------------
# Workers


START, WAIT, DONE = "start", "wait", "done"  # what a worker does next


def _next_step(study: optuna.Study, spec: StudySpec, target: int | None) -> str:
    """START another trial (below ``target`` trials, and for a grid a point nobody has taken or a
    trial queued again), WAIT while other workers' trials run (one may die and be queued again),
    or DONE. Dead workers' trials are failed (and queued) first."""
    fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    retried = {number for t in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    started = sum(t.state != TrialState.WAITING and t.number not in retried for t in trials)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    taken = {t.params[POINT] for t in trials if POINT in t.params}
    if (target is None or started < target) and (not spec.points or waiting or len(taken) < len(spec.points)):
        return START
    return WAIT if any(t.state == TrialState.RUNNING for t in trials) else DONE


def work(study: optuna.Study, spec: StudySpec, base: FitConfig, options: SweepOptions, storage_url: str) -> None:
    """Run trials of ``study`` until the grid is done, ``n_trials`` are reached or time is up.

    The study's database lock is held from "is there work left?" until the trial has its settings,
    so that across machines no grid point runs twice and no more trials start than asked for.
    """
    lock = tracking.DatabaseLock(storage_url, f"study:{study.study_name}")
    objective = Objective(spec, base, study.user_attrs[PARENT_RUN], lock)
    target = options.n_trials if options.n_trials is not None else spec.n_trials
    deadline = time.monotonic() + options.timeout if options.timeout else float("inf")
    while time.monotonic() < deadline:
        tracking.reconnecting(lock.acquire)()  # released by the objective once the trial has its settings
        try:
            step = _next_step(study, spec, target)
            if step == START:
                study.optimize(objective, n_trials=1, catch=(TrialFailed,))
        finally:
            lock.release()
        if step == DONE:
            return
        if step == WAIT:
            time.sleep(options.heartbeat_interval)


def _work_in_process(spec: StudySpec, base: FitConfig, options: SweepOptions, storage_url: str, threads: int) -> None:
    """A worker process: its own storage connection and torch threads."""
    import torch

    torch.set_num_threads(threads)
    study = _load_study(spec, options, _storage(storage_url, base, options))
    work(study, spec, base, options, storage_url)


def join_ddp_trial(spec: StudySpec, base: FitConfig, options: SweepOptions) -> bool:
    """In a DDP rank that Lightning started by running a worker's command again: train in the
    worker's trial (see ``objective.join_trial``) and say True; elsewhere False."""
    number = os.environ.get(TRIAL_ENV)
    if number is None:
        return False
    storage_url = options.storage or default_storage(base.tracking_uri)
    join_trial(_load_study(spec, options, _storage(storage_url, base, options)), spec, base, int(number))
    return True


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
        summarize(study, study.user_attrs[PARENT_RUN], base.tracking_uri)
    return study
