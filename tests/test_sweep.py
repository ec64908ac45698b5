"""`python -m ferlight.sweep`: bad study files and options as one line, and whole studies on tiny
data: grid coverage, enqueued points, pruning, MLflow nesting, resumption, concurrent workers, a
killed worker and Ctrl-C; across machines on real PostgreSQL and MLflow servers (a race of four
workers, a cold start, a killed worker, a database restart, a tracking server outage); sweeps of DDP
trials. The study's own rooms are tested fast in tests/study/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from tqdm import tqdm

from ferlight.sweep import main


def storage() -> str:
    """The default Optuna storage: optuna.db beside the default MLflow store, in the working folder."""
    return f"sqlite:///{Path.cwd() / 'optuna.db'}"


def tracking() -> str:
    """The default MLflow store (absolute: MLflow caches one store per URI string)."""
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def write_study(path: Path, doc: dict | str) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def sweep_args(study_file, tiny_csv, *extra):
    """Tiny trials: a narrow fervgg_small, one epoch of at most two batches (later options win)."""
    return [str(study_file), "--data", str(tiny_csv), "--protocol", "standard", "--arch", "fervgg_small",
            "--model-options", "{width: 8}", "--epochs", "1", "--batch-size", "16", "--limit-train-batches", "2",
            "--accelerator", "cpu", "--precision", "32-true", *extra]


def wait_for_checkpoint(workdir: Path, proc, timeout: float = 240) -> None:
    """Until the first trial has finished an epoch."""
    deadline = time.time() + timeout
    while not list(workdir.glob("checkpoints/*/*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.2)


def load(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage())


def settings(trial) -> dict:
    return trial.user_attrs["settings"]


def runs(parent_only: bool | None = None):
    client = mlflow.MlflowClient(tracking())
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    if parent_only is None:
        return found
    return [r for r in found if (r.data.tags.get("ferlight.kind") == "study") == parent_only]


def assert_each_point_once(study: optuna.Study, points: list[dict]) -> None:
    """Every point complete exactly once, and no other trial."""
    done = [settings(t) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(study.trials) == len(points), [(t.number, t.state) for t in study.trials]
    for point in points:
        assert sum(all(s[k] == v for k, v in point.items()) for s in done) == 1, (point, done)


# ----------------------------------------------------------------------------------------------
# Malformed files and options: one line naming the file and the key, exit status 2

GOOD_SPACE = {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}

MALFORMED = [
    ({"sampler": "tpe", "space": GOOD_SPACE, "prunner": "median"}, "prunner"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "fixed": {"colour": 3}}, "fixed.colour"),
    ({"sampler": "tpe", "space": {"lr": {"low": 0.1, "high": 0.01}}}, "space.lr"),
    ({"sampler": "tpe", "space": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "space.lr.low"),
    ({"sampler": "tpe", "space": {"optimizer": {"choices": []}}}, "space.optimizer.choices"),
    ({"sampler": "tpe", "space": {"optimizer": {"choices": ["adam", "lbfgs"]}}}, "space.optimizer.choices"),
    ({"sampler": "tpe", "space": {"lr": {"low": 1e-4, "high": 0.1, "scale": "log"}}}, "space.lr.scale"),
    ({"sampler": "tpe", "space": {"arch": {"choices": ["vgg11", "vgg19"]}}}, "vgg19"),
    ({"grid": [{"arch": ["vgg19"]}]}, "grid[0].arch"),
    ({"grid": [{"batch_size": ["many"]}]}, "grid[0].batch_size"),
    ({"grid": [{"batch_size": 32}]}, "grid[0].batch_size"),
    ({"grid": [{"arch": ["resnet18"], "dropout_placement": ["every"]}]}, "grid[0].dropout_placement"),
    ({"grid": [{"lr": [0.1]}, {"lr": [0.1]}]}, "grid[1]"),
    ({"grid": [{"lr": [0.1]}], "space": GOOD_SPACE}, "space"),
    ({"grid": [{"resume": ["auto"]}]}, "grid[0].resume"),
    ({"sampler": "annealing", "space": GOOD_SPACE}, "sampler"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "pruner": "patience"}, "pruner"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "pruner": {"name": "median", "n_startup": 3}}, "pruner"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "enqueue": [{"lr": 0.5}]}, "enqueue[0].lr"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "enqueue": [{"batch_size": 32}]}, "enqueue[0].batch_size"),
    ({"sampler": "tpe", "space": GOOD_SPACE, "n_trials": 0}, "n_trials"),
    ("grid: [{lr: [0.1]}\nsampler: grid\n", "not valid YAML"),
]


@pytest.mark.parametrize("doc,key", MALFORMED, ids=[key for _, key in MALFORMED])
def test_malformed_study_file_is_one_line_naming_file_and_key(workdir, tiny_csv, capsys, doc, key):
    study = write_study(workdir / "bad_study.yaml", doc)
    with pytest.raises(SystemExit) as exit_info:
        main(sweep_args(study, tiny_csv))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "bad_study.yaml" in lines[0] and key in lines[0], lines
    assert not (workdir / "optuna.db").exists() and not (workdir / "mlruns").exists()


@pytest.mark.parametrize(
    "extra,expected",
    [(["--workers", "0"], "--workers"), (["--devices", "2"], "--devices"),
     (["--storage", "nosuch://host/db"], "--storage")],
)
def test_bad_sweep_option_is_one_line(workdir, tiny_csv, capsys, extra, expected):
    study = write_study(workdir / "s.yaml", {"grid": [{"lr": [0.1]}]})
    with pytest.raises(SystemExit) as exit_info:
        main(sweep_args(study, tiny_csv, *extra))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_the_files_fixed_options_are_defaults_the_command_line_overrides(workdir, tiny_csv, capsys, monkeypatch):
    calls = []

    def run_sweep(spec, base, options):
        calls.append((base, options))
        study = optuna.create_study(direction="maximize")
        study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}, user_attrs={"settings": {"lr": 0.1}}))
        return study

    monkeypatch.setattr("ferlight.sweep.run_sweep", run_sweep)
    study = write_study(workdir / "s.yaml", {"fixed": {"epochs": 7, "batch_size": 8}, "grid": [{"lr": [0.1]}]})
    assert main(sweep_args(study, tiny_csv, "--workers", "2")) == 0  # sweep_args: --epochs 1 --batch-size 16
    ((base, options),) = calls
    assert (base.epochs, base.batch_size, base.devices, options.workers) == (1, 16, 1, 2)
    assert capsys.readouterr().out.splitlines()[1].split() == ["0*", "complete", "0.5000", "lr=0.1"]
    main([str(study), "--data", str(tiny_csv)])
    assert (calls[-1][0].epochs, calls[-1][0].batch_size) == (7, 8)  # the file's fixed options


def test_ctrl_c_ends_with_status_130_and_how_to_resume(workdir, tiny_csv, capsys, monkeypatch):
    def run_sweep(spec, base, options):
        raise KeyboardInterrupt

    monkeypatch.setattr("ferlight.sweep.run_sweep", run_sweep)
    study = write_study(workdir / "s.yaml", {"grid": [{"lr": [0.1]}]})
    assert main(sweep_args(study, tiny_csv)) == 130
    assert "resume" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_process_reports_a_malformed_file_without_traceback(workdir, tiny_csv, run_command):
    study = write_study(workdir / "bad_study.yaml", {"sampler": "tpe", "space": {"lr": {"low": 1, "high": 1}}})
    out = run_command("sweep", *sweep_args(study, tiny_csv), cwd=workdir)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad_study.yaml" in lines[0] and "space.lr" in lines[0], out.stderr[-2000:]


# ----------------------------------------------------------------------------------------------
# Studies on tiny data


@pytest.mark.slow
def test_grid_runs_every_point_once_as_nested_mlflow_runs_and_resumes(workdir, tiny_csv, capsys):
    points = [{"batch_size": 16, "optimizer": "adam"}, {"batch_size": 32, "optimizer": "adam"},
              {"batch_size": 32, "optimizer": "sgd"}]
    study_file = write_study(workdir / "grid.yaml", {
        "study_name": "tiny-grid",
        "grid": [{"batch_size": [16, 32], "optimizer": ["adam"]}, {"batch_size": [32], "optimizer": ["sgd"]}],
    })
    assert main(sweep_args(study_file, tiny_csv, "--n-trials", "2")) == 0  # stopped after two points
    assert len(load("tiny-grid").trials) == 2
    assert main(sweep_args(study_file, tiny_csv)) == 0  # resumed: the remaining point only
    table = capsys.readouterr().out
    study = load("tiny-grid")
    assert_each_point_once(study, points)
    assert any(line.split()[:3] == ["trial", "state", "val"] for line in table.splitlines())
    assert any(line.split()[0] == f"{study.best_trial.number}*" for line in table.splitlines() if line.strip())

    (parent,) = runs(parent_only=True)
    children = runs(parent_only=False)
    assert parent.info.run_name == "tiny-grid" and parent.info.status == "FINISHED"
    assert len(children) == 3
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    assert set(by_number) == {t.number for t in study.trials}
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["trial_state"] == "complete" and run.info.status == "FINISHED"
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.params["batch_size"] == str(settings(trial)["batch_size"])
        assert run.data.params["optimizer"] == settings(trial)["optimizer"]
        assert run.data.metrics["val/best_acc"] == pytest.approx(trial.value)
        assert "test/acc" in run.data.metrics and "test/f1/happy" in run.data.metrics

    best = study.best_trial
    assert parent.data.tags["best.batch_size"] == str(settings(best)["batch_size"])
    assert parent.data.tags["best.optimizer"] == settings(best)["optimizer"]
    assert parent.data.tags["best.trial_number"] == str(best.number)
    assert parent.data.metrics["best/val_acc"] == pytest.approx(best.value)
    artifacts = {a.path for a in mlflow.MlflowClient(tracking()).list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "param_importances.png", "grid.yaml"} <= artifacts

    assert main(sweep_args(study_file, tiny_csv)) == 0  # every point is done: nothing runs
    assert len(load("tiny-grid").trials) == 3 and len(runs()) == 4


@pytest.mark.slow
def test_search_runs_enqueued_points_first(workdir, tiny_csv):
    study_file = write_study(workdir / "search.yaml", {
        "study_name": "tiny-search", "sampler": "random", "n_trials": 3,
        "space": {"batch_size": {"choices": [16, 32]}, "lr": {"low": 1e-4, "high": 1e-2, "log": True}},
        "enqueue": [{"batch_size": 16, "lr": 3e-3}, {"batch_size": 32}],
    })
    assert main(sweep_args(study_file, tiny_csv)) == 0
    trials = load("tiny-search").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[0].params == {"batch_size": 16, "lr": 3e-3}
    assert trials[1].params == {"batch_size": 32, "lr": 1e-3}  # the lr the base config trains with


@pytest.mark.slow
def test_a_trial_past_its_warm_up_is_pruned_and_its_run_is_not_failed(workdir, tiny_csv, monkeypatch):
    """A threshold no accuracy reaches (1.1) after a warm-up of one epoch: a one-epoch trial is never
    judged and completes, a three-epoch trial is pruned after its second epoch, whatever the numerics."""
    study_file = write_study(workdir / "prune.yaml", {
        "study_name": "tiny-prune",
        "pruner": {"name": "threshold", "lower": 1.1, "n_warmup_steps": 1},
        "grid": [{"epochs": [1, 3]}],
    })
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # as on a terminal: with progress bars
    assert main(sweep_args(study_file, tiny_csv, "--limit-train-batches", "1.0")) == 0
    trials = {t.params["point"]: t for t in load("tiny-prune").trials}
    short, long = trials[0], trials[1]  # the points in file order: 1 epoch, then 3
    assert short.state == TrialState.COMPLETE and long.state == TrialState.PRUNED
    assert sorted(long.intermediate_values) == [0, 1]  # judged after its second epoch, then stopped
    run = mlflow.MlflowClient(tracking()).get_run(long.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["trial_state"] == "pruned"
    assert not [b.desc for b in tqdm._instances]  # the pruned trial's progress bar was closed (optuna/optuna#3783)


@pytest.mark.slow
def test_changed_grid_is_refused_for_an_existing_study(workdir, tiny_csv, capsys):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "tiny-change", "grid": [{"lr": [1e-3, 3e-3]}]})
    assert main(sweep_args(study_file, tiny_csv, "--n-trials", "0")) == 0
    write_study(study_file, {"study_name": "tiny-change", "grid": [{"lr": [1e-3, 1e-2]}]})
    with pytest.raises(SystemExit):
        main(sweep_args(study_file, tiny_csv))
    assert "--study-name" in capsys.readouterr().err


@pytest.mark.slow
def test_concurrent_commands_and_workers_share_one_grid(workdir, tiny_csv, start_command):
    points = [{"batch_size": b, "lr": lr} for b in (16, 32) for lr in (1e-3, 2e-3, 3e-3)]
    study_file = write_study(workdir / "grid.yaml", {
        "study_name": "tiny-parallel", "grid": [{"batch_size": [16, 32], "lr": [1e-3, 2e-3, 3e-3]}],
    })
    args = sweep_args(study_file, tiny_csv)
    procs = [start_command("sweep", *args, "--workers", "2", cwd=workdir), start_command("sweep", *args, cwd=workdir)]
    for proc in procs:
        _, err = proc.communicate(timeout=500)
        assert proc.returncode == 0, err[-3000:]
    assert_each_point_once(load("tiny-parallel"), points)
    (parent,) = runs(parent_only=True)
    children = runs(parent_only=False)
    assert len(children) == 6 and {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}


@pytest.mark.slow
def test_killed_worker_leaves_a_failed_trial_that_is_run_again(workdir, tiny_csv, run_command, start_command):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "tiny-kill", "grid": [{"lr": [1e-3, 3e-3]}]})
    args = sweep_args(study_file, tiny_csv, "--heartbeat-interval", "1", "--grace-period", "3")
    proc = start_command("sweep", *args, "--epochs", "40", "--batch-size", "8", cwd=workdir)  # later options win
    wait_for_checkpoint(workdir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (killed,) = load("tiny-kill").trials
    assert killed.state == TrialState.RUNNING
    time.sleep(4)  # past the grace period

    out = run_command("sweep", *args, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    study = load("tiny-kill")
    assert study.trials[killed.number].state == TrialState.FAIL
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.params["point"] for t in complete) == [0, 1] and len(study.trials) == 3
    retry = next(t for t in complete if t.params["point"] == killed.params["point"])
    assert retry.system_attrs["failed_trial"] == killed.number
    run = mlflow.MlflowClient(tracking()).get_run(killed.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["trial_state"] == "failed"


@pytest.mark.slow
def test_ctrl_c_queues_the_interrupted_trial_for_the_next_run(workdir, tiny_csv, run_command, start_command):
    study_file = write_study(workdir / "grid.yaml", {"study_name": "tiny-ctrl-c", "grid": [{"lr": [1e-3, 3e-3]}]})
    args = sweep_args(study_file, tiny_csv)
    proc = start_command("sweep", *args, "--epochs", "40", "--batch-size", "8", cwd=workdir)
    wait_for_checkpoint(workdir, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume" in err.strip().splitlines()[-1], err[-2000:]
    interrupted, queued = load("tiny-ctrl-c").trials
    assert interrupted.state == TrialState.FAIL and queued.state == TrialState.WAITING
    assert queued.params == interrupted.params
    run = mlflow.MlflowClient(tracking()).get_run(interrupted.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.tags["trial_state"] == "failed"

    out = run_command("sweep", *args, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    complete = load("tiny-ctrl-c").get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.params["point"] for t in complete) == [0, 1] and len(load("tiny-ctrl-c").trials) == 3


# ----------------------------------------------------------------------------------------------
# Across machines: workers in folders of their own that share only a PostgreSQL study and an MLflow
# server (real servers: the postgres, postgres_url and mlflow_server fixtures of tests/conftest.py)

PAPER_GRID = Path(__file__).parents[1] / "sweeps" / "paper_grid.yaml"
TINY_GRID = {"grid": [{"batch_size": [8, 16], "lr": [1e-3, 3e-3]}]}  # four points


def start_worker(folder: Path, study_file: Path, tiny_csv: Path, storage_url: str, tracking_uri: str, *extra):
    """A sweep worker as on a machine of its own: its own working folder, data cache and log; one
    torch thread (several workers share two cores here)."""
    folder.mkdir()
    env = {**os.environ, "FERLIGHT_CACHE": str(folder / "cache"), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = sweep_args(study_file, tiny_csv, "--storage", storage_url, "--tracking-uri", tracking_uri,
                      "--progress-bar", "false", *extra)
    with (folder / "worker.log").open("w") as log:
        return subprocess.Popen([sys.executable, "-m", "ferlight.sweep", *args], cwd=folder, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def finish(workers: dict[Path, subprocess.Popen], timeout: float = 1500) -> None:
    deadline = time.time() + timeout
    for folder, proc in workers.items():
        returncode = proc.wait(timeout=max(1.0, deadline - time.time()))
        assert returncode == 0, (folder / "worker.log").read_text()[-4000:]


def wait_for_any_checkpoint(folders, timeout: float = 300) -> Path:
    """The first worker folder where a trial has finished an epoch."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for folder in folders:
            if list(folder.glob("checkpoints/*/*/checkpoints/last.ckpt")):
                return folder
        time.sleep(0.2)
    raise AssertionError("no trial finished an epoch")


def assert_runs_match_trials(tracking_uri: str, study: optuna.Study) -> None:
    """One parent run; one child run per started trial, whose status and tag follow the trial's state."""
    client = mlflow.MlflowClient(tracking_uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in found if r.data.tags.get("ferlight.kind") == "study"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(found) == len(children) + 1
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    started = [t for t in study.trials if t.state != TrialState.WAITING]
    assert len(by_number) == len(children) == len(started)
    expected = {TrialState.COMPLETE: ("FINISHED", "complete"), TrialState.PRUNED: ("FINISHED", "pruned"),
                TrialState.FAIL: ("FAILED", "failed")}
    for trial in started:
        run = by_number[trial.number]
        assert (run.info.status, run.data.tags["trial_state"]) == expected[trial.state], trial.number
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id


def assert_every_point_complete_once(study: optuna.Study, n_points: int) -> list:
    """Each point complete exactly once, and every failed trial run again; the complete trials."""
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.params["point"] for t in complete) == list(range(n_points))
    failed = {t.number for t in study.trials if t.state == TrialState.FAIL}
    retried = {t.system_attrs["failed_trial"] for t in study.trials if "failed_trial" in t.system_attrs}
    assert failed == retried and not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    return complete


@pytest.mark.slow
def test_four_workers_on_postgresql_and_an_mlflow_server_run_each_paper_grid_point_once(
    tmp_path, tiny_csv, postgres_url, mlflow_server
):
    folders = [tmp_path / f"machine-{i}" for i in range(4)]
    paper_models = ("--model-options", "{}", "--limit-train-batches", "1")  # the grid's models at their own size
    workers = {f: start_worker(f, PAPER_GRID, tiny_csv, postgres_url, mlflow_server.url, *paper_models) for f in folders}
    finish(workers)
    study = optuna.load_study(study_name="paper-grid", storage=postgres_url)
    complete = assert_every_point_complete_once(study, 19)
    assert len(study.trials) == 19  # nothing failed, nothing ran twice
    assert len({tuple(sorted(settings(t).items())) for t in complete}) == 19
    assert_runs_match_trials(mlflow_server.url, study)
    assert not list(tmp_path.rglob("*.lock"))  # no lock file: the lock lives in the database
    print(f"race: {len(complete)} complete of {len(study.trials)} trials, 19 distinct points")
    for folder in (*folders, mlflow_server.artifacts):  # 14 GB of checkpoints and models, kept only on failure
        shutil.rmtree(folder)


@pytest.mark.slow
def test_workers_started_together_on_empty_databases_all_join(tmp_path, tiny_csv, postgres, postgres_url):
    """A cold start: four workers on an empty Optuna database and an empty MLflow database (the
    MLflow store straight in PostgreSQL: both schemas are made under the database's lock)."""
    study_file = write_study(tmp_path / "grid.yaml", {"study_name": "cold", **TINY_GRID})
    mlflow_db = postgres.create_database(f"mlflow_{uuid.uuid4().hex}")
    workers = {f: start_worker(f, study_file, tiny_csv, postgres_url, mlflow_db)
               for f in [tmp_path / f"machine-{i}" for i in range(4)]}
    finish(workers)
    study = optuna.load_study(study_name="cold", storage=postgres_url)
    assert_every_point_complete_once(study, 4)
    assert len(study.trials) == 4
    assert_runs_match_trials(mlflow_db, study)


@pytest.mark.slow
def test_a_killed_worker_s_trial_fails_by_heartbeat_and_another_worker_runs_it(tmp_path, tiny_csv, postgres_url, mlflow_server):
    study_file = write_study(tmp_path / "grid.yaml", {"study_name": "kill", **TINY_GRID})
    beats = ("--heartbeat-interval", "1", "--grace-period", "4", "--epochs", "8", "--limit-train-batches", "1.0")
    folders = [tmp_path / f"machine-{i}" for i in range(2)]
    workers = {f: start_worker(f, study_file, tiny_csv, postgres_url, mlflow_server.url, *beats) for f in folders}
    victim = wait_for_any_checkpoint(folders)
    workers.pop(victim).send_signal(signal.SIGKILL)
    finish(workers)
    study = optuna.load_study(study_name="kill", storage=postgres_url)
    assert_every_point_complete_once(study, 4)
    (killed,) = study.get_trials(states=(TrialState.FAIL,))
    assert len(study.trials) == 5
    assert_runs_match_trials(mlflow_server.url, study)  # the killed trial's run is FAILED, not RUNNING


@pytest.mark.slow
def test_a_database_restart_during_a_sweep_loses_and_doubles_no_trial(tmp_path, tiny_csv, postgres, postgres_url, mlflow_server):
    study_file = write_study(tmp_path / "grid.yaml", {"study_name": "restart", **TINY_GRID})
    folders = [tmp_path / f"machine-{i}" for i in range(2)]
    workers = {f: start_worker(f, study_file, tiny_csv, postgres_url, mlflow_server.url, "--epochs", "4",
                               "--heartbeat-interval", "1", "--grace-period", "20") for f in folders}
    for folder, proc in workers.items():  # both in the middle of a trial
        wait_for_checkpoint(folder, proc)
    postgres.stop()  # the study's database and the MLflow server's: every open connection is cut
    time.sleep(5)  # heartbeats (every second) and the tracking server meet a database that is down
    postgres.start()
    finish(workers)
    assert "database connection lost" in "".join((f / "worker.log").read_text() for f in folders)  # and waited
    study = optuna.load_study(study_name="restart", storage=postgres_url)
    assert_every_point_complete_once(study, 4)
    assert len(study.trials) == 4
    assert_runs_match_trials(mlflow_server.url, study)


@pytest.mark.slow
def test_trials_wait_for_a_stopped_tracking_server_and_the_study_finishes(tmp_path, tiny_csv, postgres_url, mlflow_server):
    study_file = write_study(tmp_path / "grid.yaml", {"study_name": "outage", **TINY_GRID})
    folders = [tmp_path / f"machine-{i}" for i in range(2)]
    workers = {f: start_worker(f, study_file, tiny_csv, postgres_url, mlflow_server.url, "--epochs", "4")
               for f in folders}
    for folder, proc in workers.items():  # both in the middle of a trial
        wait_for_checkpoint(folder, proc)
    mlflow_server.stop()
    time.sleep(15)  # MLflow's client retries with backoff meanwhile
    mlflow_server.start()
    finish(workers)
    study = optuna.load_study(study_name="outage", storage=postgres_url)
    assert_every_point_complete_once(study, 4)
    assert_runs_match_trials(mlflow_server.url, study)


@pytest.mark.slow
def test_a_sweep_of_two_process_ddp_trials_completes_and_prunes(workdir, tiny_csv):
    """Trials that are 2-process DDP fits (gloo on CPU): one run each; pruning decided on rank 0
    reaches the other rank through the RDB storage (the default SQLite one here)."""
    ddp = ("--devices", "2", "--strategy", "ddp", "--epochs", "2", "--limit-train-batches", "1.0")
    for name, pruner in (("ddp-complete", "none"), ("ddp-pruned", {"name": "threshold", "lower": 1.1})):
        study_file = write_study(workdir / f"{name}.yaml", {"study_name": name, "pruner": pruner,
                                                            "grid": [{"lr": [1e-3]}]})
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        out = subprocess.run([sys.executable, "-m", "ferlight.sweep", *sweep_args(study_file, tiny_csv, *ddp)],
                             cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-4000:]
    complete, = load("ddp-complete").trials
    pruned, = load("ddp-pruned").trials
    assert complete.state == TrialState.COMPLETE and pruned.state == TrialState.PRUNED
    assert list(pruned.intermediate_values) == [0]  # judged after its first epoch, then stopped
    children = runs(parent_only=False)
    assert len(children) == 2  # one run a trial, not one a rank
    for trial, state in ((complete, "complete"), (pruned, "pruned")):
        run = mlflow.MlflowClient(tracking()).get_run(trial.user_attrs["mlflow_run_id"])
        assert (run.info.status, run.data.tags["trial_state"], run.data.params["world_size"]) == ("FINISHED", state, "2")
