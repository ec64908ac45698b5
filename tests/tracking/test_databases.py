"""The databases behind the stores: the lock beside a SQLite file (exclusive while held), no lock for
a URL without a database, the PostgreSQL URL test, and retrying only a lost connection."""

import fcntl

import pytest
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError
from tenacity import wait_none

from ferlight.tracking.databases import DatabaseLock, is_postgresql, reconnecting, sqlite_file


def _held_elsewhere(path) -> bool:
    with open(path, "a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other, fcntl.LOCK_UN)
        return False


def test_lock_is_exclusive_while_held(tmp_path):
    lock = DatabaseLock(f"sqlite:///{tmp_path}/new/dir/optuna.db")
    assert lock.path == tmp_path / "new" / "dir" / "optuna.db.lock"
    with lock:
        assert _held_elsewhere(lock.path)
        lock.acquire()  # already held: no deadlock
    assert not _held_elsewhere(lock.path)
    lock.release()  # not held: nothing to do


@pytest.mark.parametrize("url", ["mysql+pymysql://host/db", "sqlite://", "http://127.0.0.1:5000"])
def test_lock_does_nothing_for_other_urls(url):
    assert sqlite_file(url) is None and not is_postgresql(url)
    with DatabaseLock(url) as lock:
        assert lock.path is None and lock._connection is None


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgresql+psycopg://u@h/db", "postgres://h/db"])
def test_postgresql_urls_with_any_driver(url):
    assert is_postgresql(url) and sqlite_file(url) is None


def test_an_unreachable_postgresql_fails_at_once():
    with pytest.raises(sqlalchemy.exc.OperationalError):
        DatabaseLock("postgresql://u@127.0.0.1:1/db").acquire()


def test_only_a_lost_connection_is_retried():
    calls = []

    def answer_third_time(error):
        calls.append(error)
        if len(calls) < 3:
            raise error
        return "answered"

    flaky = reconnecting(answer_third_time).retry_with(wait=wait_none())  # no sleeping in a unit test

    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert flaky(lost) == "answered"
    assert len(calls) == 3
    calls.clear()
    try:  # what Optuna's storage raises: its own error, from SQLAlchemy's
        raise StorageInternalError("An exception is raised during the commit.") from lost
    except StorageInternalError as wrapped:
        assert flaky(wrapped) == "answered"
    calls.clear()
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        flaky(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert len(calls) == 1
