"""A file lock beside a SQLite database, for the processes of one machine sharing it.

MLflow's and Optuna's SQLite stores race when two processes create their schema at once, and a
study's workers must not pick the same grid point: both hold ``<database>.lock`` while they do.
For a database server (any URL that is not ``sqlite:///FILE``) the lock does nothing.
"""

from __future__ import annotations

import fcntl
from pathlib import Path


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///FILE`` URL, else None."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


class SqliteLock:
    """An exclusive ``flock`` on ``<database>.lock``: ``acquire``/``release``, or ``with``."""

    def __init__(self, url: str) -> None:
        db = sqlite_file(url)
        self.path = db.with_name(db.name + ".lock") if db else None
        self._file = None

    def acquire(self) -> None:
        if self.path is None or self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SqliteLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
