"""The lock beside a SQLite database: exclusive while held, nothing for a database server."""

import fcntl

import pytest

from ferlight.tracking.sqlite_lock import SqliteLock, sqlite_file


def _held_elsewhere(path) -> bool:
    with open(path, "a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other, fcntl.LOCK_UN)
        return False


def test_lock_is_exclusive_while_held(tmp_path):
    lock = SqliteLock(f"sqlite:///{tmp_path}/new/dir/optuna.db")
    assert lock.path == tmp_path / "new" / "dir" / "optuna.db.lock"
    with lock:
        assert _held_elsewhere(lock.path)
        lock.acquire()  # already held: no deadlock
    assert not _held_elsewhere(lock.path)
    lock.release()  # not held: nothing to do


@pytest.mark.parametrize("url", ["postgresql://u:p@host/db", "mysql+pymysql://host/db", "sqlite://"])
def test_lock_does_nothing_for_other_urls(url):
    assert sqlite_file(url) is None
    with SqliteLock(url) as lock:
        assert lock.path is None
