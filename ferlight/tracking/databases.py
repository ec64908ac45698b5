"""The SQL databases that Optuna studies and MLflow stores live in: a lock held in the database, and
riding out a lost connection.

The lock serves two purposes: creating a schema (Optuna's and MLflow's race when two processes
create theirs at once) and a sweep worker's "is there work left? then start a trial" (so that no
grid point runs twice and no more trials start than asked for). It lives where the database does:

- ``sqlite:///FILE``: filelock's ``FileLock`` on ``FILE.lock`` (a SQLite file serves one machine).
- ``postgresql://...``: a PostgreSQL session-level advisory lock, so it holds across machines. The
  server frees it when the holder's connection ends: a killed worker or a restarted server leaves
  no lock behind.
- any other URL (MySQL, an MLflow server): no lock.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from filelock import FileLock
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from ferlight.errors import first_line

RECONNECT_S = 120  # how long a call waits for a lost database (a restart, a failover) to come back
_log = logging.getLogger(__name__)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///FILE`` URL, else None."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def is_postgresql(url: str) -> bool:
    """Whether ``url`` is a SQLAlchemy URL of a PostgreSQL database (any driver)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def connection_lost(err: BaseException | None) -> bool:
    """Whether ``err``, or an error it was raised from, is a database connection lost or refused (a
    restart, a failover, an outage); Optuna raises its own error from SQLAlchemy's."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    while err is not None:
        if isinstance(err, OperationalError) or (isinstance(err, DBAPIError) and err.connection_invalidated):
            return True
        err = err.__cause__
    return False


def root_cause(err: BaseException) -> BaseException:
    """The first error of the chain ``err`` was raised from (Optuna wraps SQLAlchemy's, which wraps the driver's)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


# Retry a database call that failed because the connection was lost or refused, for RECONNECT_S.
reconnecting = retry(
    retry=retry_if_exception(connection_lost),
    wait=wait_exponential(multiplier=0.5, max=5),
    stop=stop_after_delay(RECONNECT_S),
    before_sleep=lambda state: _log.warning(
        "database connection lost (%s): retrying %s in %.1f s", first_line(root_cause(state.outcome.exception())),
        state.fn.__name__, state.next_action.sleep,
    ),
    reraise=True,
)


class DatabaseLock:
    """An exclusive lock named ``name`` in the database at ``url``: ``acquire``/``release``, or ``with``.

    One ``release`` ends the hold, however many ``acquire`` calls came before: a sweep worker takes
    the lock before it asks for work, and the trial it starts gives the lock up as soon as it has its
    settings. ``acquire`` fails at once on an unreachable database (wrap it in ``reconnecting`` to wait).
    """

    def __init__(self, url: str, name: str = "ferlight") -> None:
        self.url = url
        db = sqlite_file(url)
        self.path = db.with_name(db.name + ".lock") if db else None
        self._file_lock = FileLock(self.path) if self.path else None
        self.key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        self._connection = None  # PostgreSQL: the connection whose session holds the lock

    def acquire(self) -> None:
        if self._file_lock is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # filelock before 3.13 makes no folder
            self._file_lock.acquire()
        elif is_postgresql(self.url) and self._connection is None:
            self._connection = self._lock_in_postgresql()

    def _lock_in_postgresql(self):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        connection = engine.connect()
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
        except BaseException:
            connection.close()
            raise
        return connection

    def release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release(force=True)
        elif self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()  # the session ends, and its advisory lock with it
            except Exception:  # the connection was already lost: so was the lock
                pass

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
