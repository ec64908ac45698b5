"""A file lock beside a SQLite database, for the processes of one machine sharing it.

MLflow's and Optuna's SQLite stores race when two processes create their schema at once, and a
study's workers must not pick the same grid point: both hold ``<database>.lock`` while they do.
The lock is filelock's ``FileLock``; for a database server (any URL that is not ``sqlite:///FILE``)
there is no file, and the lock does nothing.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///FILE`` URL, else None."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


class SqliteLock:
    """``FileLock`` on ``<database>.lock`` (its folder made if missing): ``acquire``/``release``, or ``with``.

    One ``release`` ends the hold, however many ``acquire`` calls came before (FileLock counts
    them): a sweep worker takes the lock before it asks for work, and the trial it starts gives the
    lock up as soon as it has its settings.
    """

    def __init__(self, url: str) -> None:
        db = sqlite_file(url)
        self.path = db.with_name(db.name + ".lock") if db else None
        self._lock = FileLock(self.path) if self.path else None

    def acquire(self) -> None:
        if self._lock is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # filelock before 3.13 makes no folder
            self._lock.acquire()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release(force=True)

    def __enter__(self) -> SqliteLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
