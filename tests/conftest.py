"""Fixtures that several test modules share: tiny data, a random-weight checkpoint, a fresh working
folder, ferlight's commands run as child processes, and real PostgreSQL and MLflow servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest
import torch

from ferlight.testing.checkpoints import save_checkpoint
from ferlight.testing.servers import MlflowServer, PostgresServer, ServerError
from ferlight.testing.tiny_data import write_tiny_fer2013
from ferlight.tracking.store import ensure_store


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory):
    """A tiny learnable FER2013 CSV (ferlight.testing.tiny_data)."""
    return write_tiny_fer2013(tmp_path_factory.mktemp("data") / "fer2013.csv")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A random-weight fervgg_small checkpoint (tests that need their own define ``checkpoint`` locally)."""
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.ckpt")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for the module (a few 48 x 48 faces run fastest so, and two threads stall
    badly on a shared CPU), and the session's thread count put back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working folder (the default MLflow and Optuna stores land here) with its own data cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FERLIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory):
    """A SQLite MLflow store with its schema and nothing else: made once, since making a schema takes seconds."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    ensure_store(f"sqlite:///{db}")
    return db


@pytest.fixture
def mlflow_store(workdir, empty_mlflow_db):
    """The default MLflow store of a fresh working folder (``workdir``), ready to use; its URI."""
    shutil.copy(empty_mlflow_db, workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}"


def _command(name: str, args) -> list[str]:
    return [sys.executable, "-m", f"ferlight.{name}", *map(str, args)]


def _default_sigint() -> None:
    """Popen's preexec_fn: let the child take Ctrl-C even when pytest runs as a background job
    (a non-interactive shell starts those with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def run_command():
    """``run_command("fit", *args, cwd=...)``: ``python -m ferlight.fit ARGS`` to its end, output captured."""

    def run(name: str, *args, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run(_command(name, args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def start_command():
    """``start_command("sweep", *args, cwd=...)``: the command started, stderr piped, Ctrl-C deliverable."""

    def start(name: str, *args, cwd) -> subprocess.Popen:
        return subprocess.Popen(_command(name, args), cwd=cwd, text=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ}, preexec_fn=_default_sigint)

    return start


def _no_server(reason: str) -> None:
    """Skip a test whose server cannot run here; fail it where servers are required (CI sets
    FERLIGHT_REQUIRE_SERVERS=1, so that those tests cannot pass by being skipped)."""
    if os.environ.get("FERLIGHT_REQUIRE_SERVERS") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _started(server, name: str):
    """``server`` started, or the test skipped (failed where servers are required) with why."""
    try:
        return server.start()
    except ServerError as err:
        _no_server(f"{name} did not start: {err}")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """The session's own PostgreSQL server (ferlight.testing.servers), stopped at the end; tests that
    need it skip where none can run."""
    if reason := PostgresServer.unavailable():
        _no_server(reason)
    server = _started(PostgresServer(tmp_path_factory.mktemp("postgres")), "PostgreSQL")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres):
    """A fresh database of the test's own on the session's PostgreSQL server: its SQLAlchemy URL."""
    return postgres.create_database(f"test_{uuid.uuid4().hex}")


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    """A started MLflow server of the test's own on a fresh PostgreSQL database, its folder (log,
    ``artifacts/``) ``tmp_path / "mlflow-server"``; stopped at the end."""
    database = postgres.create_database(f"mlflow_{uuid.uuid4().hex}")
    server = _started(MlflowServer(tmp_path / "mlflow-server", database), "the MLflow server")
    yield server
    server.stop()
