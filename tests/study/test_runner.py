"""Running a study, with trials that train nothing (``fake_fit``): a grid runs each point once as
child runs of one parent run and resumes; queued points run first with the base config's other
settings; a changed grid is refused; Ctrl-C and a dead worker queue the trial again; a worker with
nothing left to start waits while other trials run; what a sweep's trials may train on."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from ferlight import tracking
from ferlight.errors import ConfigError
from ferlight.study.runner import SweepOptions, check_options, run_sweep
from ferlight.study.spec import load_study_spec
from ferlight.study.storage import build_storage, default_storage
from ferlight.training.config import FitConfig

BASE = FitConfig(arch="fervgg_small", batch_size=64, devices=1)  # as the sweep command defaults


def write_study(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sweep(study_file: Path, base: FitConfig = BASE, **options):
    return run_sweep(load_study_spec(study_file), base, SweepOptions(**options))


def runs(parent_only: bool):
    client = tracking.client()
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in found if (r.data.tags.get("ferlight.kind") == "study") == parent_only]


def test_grid_runs_every_point_once_as_child_runs_of_one_parent_and_resumes(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "grid.yaml", {
        "study_name": "grid", "grid": [{"batch_size": [16, 32], "lr": [1e-3]}, {"batch_size": [32], "lr": [2e-3]}],
    })
    assert len(sweep(study_file, n_trials=2).trials) == 2  # stopped after two points
    study = sweep(study_file)  # resumed: the remaining point only
    done = sorted((t.user_attrs["settings"]["batch_size"], t.user_attrs["settings"]["lr"]) for t in study.trials)
    assert done == [(16, 1e-3), (32, 1e-3), (32, 2e-3)] and all(t.state == TrialState.COMPLETE for t in study.trials)

    (parent,) = runs(parent_only=True)
    children = runs(parent_only=False)
    assert (parent.info.run_name, parent.info.status, parent.data.params["grid_points"]) == ("grid", "FINISHED", "3")
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id} and len(children) == 3
    best = study.best_trial
    assert (best.user_attrs["settings"], parent.data.tags["best.trial_number"]) == ({"batch_size": 32, "lr": 2e-3}, str(best.number))
    assert parent.data.tags["best.run_id"] == best.user_attrs["mlflow_run_id"]
    assert parent.data.metrics["best/val_acc"] == pytest.approx(best.value)
    artifacts = {a.path for a in tracking.client().list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "param_importances.png", "grid.yaml"} <= artifacts

    assert len(sweep(study_file).trials) == 3 and len(fake_fit.configs) == 3  # every point is done: nothing runs


def test_the_stored_study_names_its_objective_for_optuna_dashboard(mlflow_store, fake_fit, workdir):
    sweep(write_study(workdir / "named.yaml", {"study_name": "named", "grid": [{"batch_size": [16]}]}))
    stored = optuna.load_study(study_name="named", storage=default_storage())  # as optuna-dashboard reads it
    assert stored.metric_names == ["val/best_acc"]


def test_queued_points_run_first_with_the_base_configs_other_settings(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "search.yaml", {
        "study_name": "search", "sampler": "random", "n_trials": 3,
        "space": {"batch_size": {"choices": [16, 32]}, "lr": {"low": 1e-4, "high": 1e-2, "log": True}},
        "enqueue": [{"batch_size": 16, "lr": 3e-3}, {"batch_size": 32}],
    })
    trials = sweep(study_file).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[0].params == {"batch_size": 16, "lr": 3e-3}
    assert trials[1].params == {"batch_size": 32, "lr": 1e-3}  # the lr the base config trains with


def test_queued_points_take_a_model_options_default_only_where_it_applies(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "search.yaml", {
        "study_name": "options", "sampler": "random", "n_trials": 2,
        "space": {"arch": {"choices": ["vgg11", "resnet18"]}, "dropout_placement": {"choices": ["none", "every"]}},
        "enqueue": [{"arch": "vgg11"}, {"arch": "resnet18"}],
    })
    vgg, resnet = sweep(study_file).trials
    assert vgg.params == {"arch": "vgg11", "dropout_placement": "none"}  # VGG11's default placement
    assert resnet.params == {"arch": "resnet18"}  # a ResNet has no dropout placement
    assert [c.model_options.get("dropout_placement") for c in fake_fit.configs] == ["none", None]


def test_changed_grid_is_refused_for_an_existing_study(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "change", "grid": [{"lr": [1e-3, 3e-3]}]})
    sweep(study_file, n_trials=0)
    write_study(study_file, {"study_name": "change", "grid": [{"lr": [1e-3, 1e-2]}]})
    with pytest.raises(ConfigError, match="--study-name"):
        sweep(study_file)


def test_ctrl_c_queues_the_trial_summarises_and_the_next_run_completes(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "ctrl-c", "grid": [{"lr": [1e-3, 3e-3]}]})
    fake_fit.raises.update({1e-3: KeyboardInterrupt(), 3e-3: KeyboardInterrupt()})  # whichever point comes first
    with pytest.raises(KeyboardInterrupt):
        sweep(study_file)
    (parent,) = runs(parent_only=True)
    assert parent.info.status == "FINISHED"  # summarised on the way out
    fake_fit.raises.clear()
    study = sweep(study_file)
    interrupted, queued = study.trials[:2]
    assert interrupted.state == TrialState.FAIL and queued.params == interrupted.params
    run = tracking.client().get_run(interrupted.user_attrs["mlflow_run_id"])
    assert run.data.tags["trial_state"] == "failed"
    assert sorted(t.params["point"] for t in study.get_trials(states=(TrialState.COMPLETE,))) == [0, 1]


def test_a_dead_workers_trial_runs_again_after_its_grace_period(mlflow_store, fake_fit, workdir):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "dead", "grid": [{"lr": [1e-3, 3e-3]}]})
    study = sweep(study_file, n_trials=0, heartbeat_interval=1, grace_period=1)
    storage = build_storage(default_storage(), 1, 1, None)
    dead = study.ask()  # a worker takes point 0 and dies after one heartbeat
    dead.suggest_categorical("point", [0, 1])
    dead.set_user_attr("mlflow_run_id", tracking.create_run(tracking.client(), "ferlight", "dead-000", {}))
    storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("dead"), dead.number))
    time.sleep(2.1)  # past the grace period, in the whole seconds SQLite keeps heartbeats in

    study = sweep(study_file, heartbeat_interval=1, grace_period=1)
    assert study.trials[dead.number].state == TrialState.FAIL and len(study.trials) == 3
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number)
    assert retry.state == TrialState.COMPLETE and retry.params == study.trials[dead.number].params
    run = tracking.client().get_run(dead.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["trial_state"] == "failed"


def test_a_worker_with_nothing_to_start_waits_while_a_trial_runs_and_reruns_it_if_its_worker_dies(
    mlflow_store, fake_fit, workdir
):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "wait", "grid": [{"lr": [1e-3, 3e-3]}]})
    study = sweep(study_file, n_trials=0, heartbeat_interval=1, grace_period=2)
    storage = build_storage(default_storage(), 1, 2, None)
    other = study.ask()  # another worker is running point 0, alive for now: its last heartbeat is fresh
    other.suggest_categorical("point", [0, 1])
    storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("wait"), other.number))

    started = time.monotonic()
    study = sweep(study_file, heartbeat_interval=1, grace_period=2)  # runs point 1, then waits instead of leaving
    assert time.monotonic() - started >= 2  # until the other trial's heartbeat was stale
    assert study.trials[other.number].state == TrialState.FAIL
    assert sorted(t.params["point"] for t in study.get_trials(states=(TrialState.COMPLETE,))) == [0, 1]


@pytest.mark.parametrize("devices,one", [(1, True), ("1", True), ("0,", True), ("[2]", True), (2, False), ("0,1", False), ("auto", False)])
def test_a_trial_on_several_devices_needs_ddp(devices, one):
    base = FitConfig(devices=devices)
    if one:
        check_options(base, SweepOptions())
    else:
        with pytest.raises(ConfigError, match="--devices"):
            check_options(base, SweepOptions())
    check_options(FitConfig(devices=devices, strategy="ddp"), SweepOptions())


@pytest.mark.parametrize("base,options,flag", [
    (FitConfig(devices=2, strategy="ddp_spawn"), SweepOptions(), "--strategy"),  # its ranks would not know the trial
    (FitConfig(devices=2, strategy="ddp", num_nodes=2), SweepOptions(), "--num-nodes"),
    (FitConfig(devices=2, strategy="ddp"), SweepOptions(workers=2), "--workers"),
])
def test_ddp_trials_run_one_worker_on_one_machine(base, options, flag):
    with pytest.raises(ConfigError, match=flag):
        check_options(base, options)
