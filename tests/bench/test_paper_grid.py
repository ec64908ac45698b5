"""bench/paper_grid.py at tiny scale: rows land in the results file one by one, and a results file that
holds some rows makes the runner train only the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from ferlight.hardware import machine as hardware

ROOT = Path(__file__).resolve().parents[2]
ROWS = ["resnet10-adam-32", "vgg11-adam-64-every", "resnet10-rmsprop-64"]


def grid(tmp_path, tiny_csv, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "FERLIGHT_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "paper_grid.py"), "--data", str(tiny_csv), "--accelerator", "cpu",
         "--precision", "32-true", "--output", str(tmp_path / "grid.jsonl"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env,
    )


def finished_runs(tmp_path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("paper-grid").experiment_id])


def rows(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "grid.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_results_file_with_some_rows_makes_the_runner_train_only_the_others(tmp_path, tiny_csv):
    first = grid(tmp_path, tiny_csv, "--epochs", "1", "--rows", ROWS[0])
    assert first.returncode == 0, first.stderr[-3000:]
    (kept,) = rows(tmp_path)
    assert kept["row"] == ROWS[0] and kept["epochs"] == 1 and set(kept["per_class"]) >= {"happy", "disgust"}
    assert kept["command"].startswith("python -m ferlight.fit ") and "--optimizer adam --batch-size 32" in kept["command"]
    assert kept["hardware"].startswith(f"{hardware.cpu_model()} ({hardware.cpu_id()}), ")  # the machine it ran on

    second = grid(tmp_path, tiny_csv, "--epochs", "1", "--rows", *ROWS)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"1 rows in {tmp_path / 'grid.jsonl'}; 2 to train: {ROWS[1]}, {ROWS[2]}" in second.stdout
    done = rows(tmp_path)
    assert [r["row"] for r in done] == ["vgg11-adam-64-every", "resnet10-adam-32", "resnet10-rmsprop-64"]  # grid order
    assert done[1] == kept  # the row already there is left as it was, not trained again
    runs = finished_runs(tmp_path)
    assert len(runs) == 3 and {r.info.run_id for r in runs} == {r["mlflow_run_id"] for r in done}
    assert all(r.info.status == "FINISHED" for r in runs)

    table = (tmp_path / "grid.md").read_text()
    assert table.split("## Per-class")[0].count("| not yet run |") == 16  # every paper row is listed, trained or not
    line = next(t for t in table.splitlines() if t.startswith("| resnet10-adam-32 |"))
    assert "| 43.2 |" in line and f"| {100 * kept['test_acc']:.1f} |" in line  # the paper's figure beside ours
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")

    third = grid(tmp_path, tiny_csv, "--epochs", "1", "--rows", *ROWS)
    assert third.returncode == 0 and "0 to train" in third.stdout and len(finished_runs(tmp_path)) == 3


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (any of its threads may have started them)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from Linux's /proc")
def test_a_runner_killed_mid_row_leaves_no_training_behind(tmp_path, tiny_csv):
    env = {**os.environ, "FERLIGHT_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    runner = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "paper_grid.py"), "--data", str(tiny_csv), "--accelerator", "cpu",
         "--precision", "32-true", "--epochs", "500", "--output", str(tmp_path / "grid.jsonl"), "--rows", ROWS[0]],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt")):  # the row's fit is training
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.2)
    (fit,) = children(runner.pid)
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{fit}").exists() and Path(f"/proc/{fit}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the row's ferlight.fit outlived its runner"
        time.sleep(0.1)


def test_a_results_file_of_another_scale_is_refused_in_one_line(tmp_path, tiny_csv):
    (tmp_path / "grid.jsonl").write_text(json.dumps({"row": "resnet10-adam-32", "epochs": 8}) + "\n")
    out = grid(tmp_path, tiny_csv, "--epochs", "1")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'grid.jsonl'}: row resnet10-adam-32 was trained at --epochs 8, not --epochs 1; "
        "use another --output for another scale"]
    assert not (tmp_path / "mlflow.db").exists()


def test_the_grid_is_the_papers_19_rows_each_with_its_figure():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import paper_grid
    finally:
        sys.path.remove(str(ROOT / "bench"))
    points = paper_grid.grid_points(extension=False)
    assert len(points) == 19 and set(points) == set(paper_grid.PAPER)
    assert len(paper_grid.grid_points(extension=True)) == 27
    beyond = paper_grid.grid_points(extension=False, beyond=True)
    assert list(beyond)[-1] == "fervgg_small-sgd-64-cpu_60min" and len(beyond) == 20
    assert {row for row, _, _ in paper_grid.PAPER_F1.values()} <= set(points)
