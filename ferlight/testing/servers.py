"""Real PostgreSQL and MLflow servers for tests, started and stopped by the tests themselves.

:class:`PostgresServer` is a throwaway PostgreSQL cluster in a folder, on a free loopback port,
run by the installed server binaries (Debian's package; PyPI ships no maintained PostgreSQL
server). :class:`MlflowServer` is ``mlflow server`` on a database of it, its artifacts served from
its folder. Both can be stopped and started again on the same port with the same data, so tests
can take a server away in the middle of a sweep. Their logs stay in their folders.

Needs psycopg 3 (the test extra).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "ferlight"
# Four sweep workers and an MLflow server, each with a connection pool, connect at once.
MAX_CONNECTIONS = 200


class ServerError(RuntimeError):
    """A test server did not start or stop; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    """Whether something accepts connections on the loopback port."""
    try:
        socket.create_connection((HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({log} not written)"


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/<version>/bin, else
    ``pg_config --bindir`` (None if neither holds a ``postgres``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: [int(n) for n in p.parts[-3].split(".") if n.isdigit()])
    if found:
        return found[-1].parent
    if pg_config := shutil.which("pg_config"):
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "postgres").is_file():
            return bindir
    return None


def _as_server_user() -> list[str]:
    """What runs a PostgreSQL program: the caller itself, or, for root (whom PostgreSQL refuses), the
    ``postgres`` user keeping root's right to pass folder permissions. ``runuser -u postgres``
    alone cannot reach pytest's temporary folders (root's, mode 700); CAP_DAC_READ_SEARCH would do
    but Docker's default capabilities lack it, CAP_DAC_OVERRIDE they have."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]


class PostgresServer:
    """A throwaway PostgreSQL cluster in ``folder`` (data in ``data/``, its socket and log beside
    it) on a free loopback port, superuser ``ferlight`` trusted without a password.

    Set up for tests, not for data that matters: fsync is off.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).absolute()
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.bindir = postgres_bindir()

    @staticmethod
    def unavailable() -> str | None:
        """Why no server can run here, or None if one can."""
        if postgres_bindir() is None:
            return ("no PostgreSQL server binaries (no /usr/lib/postgresql/*/bin/postgres, no pg_config): "
                    "install Debian's postgresql package")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root, which PostgreSQL refuses, and there is no 'postgres' user to run it as"
        return None

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database``, naming its driver: psycopg 3 (SQLAlchemy's default for
        ``postgresql://`` is psycopg2, which ferlight does not install)."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """The libpq URI of ``database``, for ``psycopg.connect`` and ``psql``."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """Start the server (making the cluster first if there is none); return when it accepts connections."""
        if not (self.data / "PG_VERSION").is_file():
            self._initdb()
        self._pg_ctl("start", "-t", "60", "-l", str(self.log))
        return self

    def stop(self) -> None:
        """Stop the server, cutting open connections; nothing if it is not running."""
        if (self.data / "postmaster.pid").is_file():
            self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Restart the server process: open connections are cut, new ones work once this returns."""
        self._pg_ctl("restart", "-m", "fast", "-t", "60", "-l", str(self.log))

    def create_database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:  # CREATE DATABASE runs outside a transaction
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _initdb(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": self.port,
            "unix_socket_directories": f"'{self.folder}'",
            "max_connections": MAX_CONNECTIONS,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# ferlight.testing.servers\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", *args)

    def _run(self, program: str, *args: str) -> None:
        if self.bindir is None:
            raise ServerError(self.unavailable())
        done = subprocess.run([*_as_server_user(), str(self.bindir / program), *args], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if done.returncode:
            raise ServerError(f"{program} {' '.join(args)} failed (status {done.returncode}): "
                              f"{done.stderr.strip() or done.stdout.strip()}\n{self.log}:\n{_tail(self.log)}")


class MlflowServer:
    """``mlflow server`` on ``backend_store_uri``, artifacts served from ``folder/artifacts``, on one
    loopback port for its lifetime (a stopped server comes back where it was)."""

    def __init__(self, folder: str | os.PathLike, backend_store_uri: str, port: int | None = None):
        self.folder = Path(folder).absolute()
        self.artifacts = self.folder / "artifacts"
        self.log = self.folder / "mlflow-server.log"
        self.backend_store_uri = backend_store_uri
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The tracking URI clients use."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        """Start the server; return when it answers API calls (the store's schema made by then)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
            "--host", HOST, "--port", str(self.port),
            "--workers", "1",  # uvicorn's default is 4 processes of a few hundred MB each
        ]
        # Job execution (GenAI judges) would start a further process (a huey consumer) that no test uses.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "a") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if (status := self._process.poll()) is not None:
                self._process = None
                raise ServerError(f"mlflow server exited with status {status}\n{self.log}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"mlflow server did not answer within {timeout:g} s\n{self.log}:\n{_tail(self.log)}")
            time.sleep(0.5)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop the server and every process it started; return when its port is free."""
        if self._process is None:
            return
        group = self._process.pid  # its own session: the group holds mlflow's CLI and uvicorn
        os.killpg(group, signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever is left, a child that outlived the CLI included
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
        self._process = None
        deadline = time.monotonic() + timeout
        while _answers(self.port):
            if time.monotonic() > deadline:
                raise ServerError(f"port {self.port} still answers {timeout:g} s after mlflow server was stopped")
            time.sleep(0.2)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False
