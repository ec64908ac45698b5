"""Multi-node training rehearsed on one machine: two "nodes" on the loopback address with gloo, started
by torchrun and by SLURM's environment variables set by hand, make one MLflow run whose validation
metrics are those of one process; a node that dies ends the other with one line and a FAILED run.

The nodes share this machine's file system (as cluster nodes share one): the best checkpoint that
rank 0 writes is the one every rank tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from ferlight.data import CLASS_NAMES
from ferlight.evaluate import EvalConfig, run_evaluation

NODES = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_options(tiny_csv, workdir, epochs: int, batch_size: int = 16) -> list[str]:
    return ["--data", str(tiny_csv), "--arch", "fervgg_small", "--epochs", str(epochs), "--batch-size", str(batch_size),
            "--accelerator", "cpu", "--devices", "1", "--num-nodes", str(NODES), "--strategy", "ddp",
            "--precision", "32-true", "--progress-bar", "false", "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"]


def node_env(**extra) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def torchrun_nodes(tiny_csv, workdir, epochs: int, **kw) -> list[subprocess.Popen]:
    """``torchrun --nnodes 2 --nproc-per-node 1 --node-rank 0|1`` on 127.0.0.1, as on two machines."""
    port = free_port()
    return [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(NODES), "--nproc-per-node", "1",
         "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
         "-m", "ferlight.fit", *fit_options(tiny_csv, workdir, epochs, **kw)],
        cwd=workdir, env=node_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for rank in range(NODES)]


def slurm_nodes(tiny_csv, workdir, epochs: int) -> list[subprocess.Popen]:
    """One task a node, with the variables ``srun`` sets and Lightning's SLURM environment reads."""
    port = free_port()
    common = {"SLURM_NTASKS": str(NODES), "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": str(NODES),
              "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "ferlight-rehearsal", "SLURM_NODELIST": "localhost",
              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    return [subprocess.Popen(
        [sys.executable, "-m", "ferlight.fit", *fit_options(tiny_csv, workdir, epochs)], cwd=workdir,
        env=node_env(**common, SLURM_PROCID=str(rank), SLURM_LOCALID="0", SLURM_NODEID=str(rank)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for rank in range(NODES)]


def finish(nodes: list[subprocess.Popen], timeout: float = 420) -> list[tuple[int, str, str]]:
    """Every node's (exit status, stdout, stderr); all are killed if one has not ended in time."""
    deadline, results = time.monotonic() + timeout, []
    try:
        for node in nodes:
            out, err = node.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((node.returncode, out, err))
    finally:
        for node in nodes:
            kill_tree(node.pid)
    return results


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (torchrun starts its workers in sessions of their own)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        kill_tree(int(child))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def only_run(workdir: Path):
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def assert_one_run_with_single_process_validation(workdir: Path, tiny_csv, results) -> None:
    for status, out, err in results:
        assert status == 0, err[-3000:]
    run = only_run(workdir)
    assert run.info.status == "FINISHED" and run.data.params["world_size"] == str(NODES)
    best = next(workdir.glob(f"checkpoints/*/{run.info.run_id}/checkpoints/best.ckpt"))
    one = run_evaluation(EvalConfig(checkpoint=[str(best)], data=str(tiny_csv), protocol="paper", split="val",
                                    precision="32-true", cache_dir=str(workdir / "cache")))
    metrics = run.data.metrics  # one epoch: the epoch's validation is the best checkpoint's
    assert metrics["val/acc"] == pytest.approx(one.accuracy, abs=1e-6)
    assert sum(one.report[c]["support"] for c in CLASS_NAMES) == len(one.probabilities)  # every face once
    for name in CLASS_NAMES:
        assert metrics[f"val/f1/{name}"] == pytest.approx(one.report[name]["f1-score"], abs=1e-6), name
    assert metrics["val/f1_macro"] == pytest.approx(one.report["macro avg"]["f1-score"], abs=1e-6)


@pytest.mark.slow
def test_two_torchrun_nodes_make_one_run_with_the_validation_of_one_process(mlflow_store, workdir, tiny_csv):
    results = finish(torchrun_nodes(tiny_csv, workdir, epochs=1))
    assert_one_run_with_single_process_validation(workdir, tiny_csv, results)


@pytest.mark.slow
def test_two_slurm_tasks_make_one_run_with_the_validation_of_one_process(mlflow_store, workdir, tiny_csv):
    results = finish(slurm_nodes(tiny_csv, workdir, epochs=1))
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in results[1][2]  # Lightning took its ranks from SLURM's variables
    assert_one_run_with_single_process_validation(workdir, tiny_csv, results)


@pytest.mark.slow
def test_a_node_that_dies_ends_the_other_with_one_line_and_a_failed_run(mlflow_store, workdir, tiny_csv):
    nodes = torchrun_nodes(tiny_csv, workdir, epochs=500, batch_size=8)
    deadline = time.monotonic() + 300
    while not list(workdir.glob("checkpoints/*/*/checkpoints/last.ckpt")):  # training is under way
        assert time.monotonic() < deadline and all(n.poll() is None for n in nodes), nodes[0].communicate()[1][-3000:]
        time.sleep(0.2)
    kill_tree(nodes[1].pid)  # the whole second node: its torchrun agent and its worker
    started = time.monotonic()
    (status, _, err), _ = finish(nodes, timeout=120)
    assert status != 0 and time.monotonic() - started < 120
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith("error: rank 0 of 2: another process of this DDP run was lost ("), err[-3000:]
    assert only_run(workdir).info.status == "FAILED"
