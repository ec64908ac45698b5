"""Where a study lives: an Optuna RDB storage with heartbeats, SQLite beside the MLflow store by default.

Optuna 5 records heartbeats only in its RDB storage (SQLite, PostgreSQL or MySQL across machines):
a trial whose worker died is failed after the grace period and handed to a callback, which queues it
again. Workers hold the database's lock while the schema is created (two creating it at once would
race), wait for each other's SQLite writes, and ride out a database that restarts: every storage
call is retried while the connection is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat

from ferlight import tracking
from ferlight.errors import ConfigError, first_line

SQLITE_TIMEOUT_S = 60  # how long a worker waits for another's write to a SQLite storage
SCHEMA_LOCK = "optuna-schema"  # the database lock held while a storage is opened (and its schema made)


def default_storage(tracking_uri: str | None = None) -> str:
    """``sqlite:///optuna.db`` in the folder of a SQLite MLflow store, else in the working folder."""
    db = tracking.sqlite_file(tracking.resolve_tracking_uri(tracking_uri))
    return f"sqlite:///{(db.parent if db else Path.cwd()) / 'optuna.db'}"


class ReconnectingRDBStorage(RDBStorage):
    """Optuna's RDB storage whose calls wait for a lost database connection to come back.

    Optuna does not retry: a worker whose storage call meets a restarting server would fail its trial,
    and a heartbeat thread that meets it dies, so that a running trial is later taken for dead.
    """


# Every call that reaches the database: the storage API, the heartbeat, and what Optuna's cache calls.
for _name in sorted(
    BaseStorage.__abstractmethods__ | BaseHeartbeat.__abstractmethods__
    | {"_create_new_trial", "_get_trials", "_set_trial_param", "_get_best_trial_id",
       "get_trial_id_from_study_id_trial_number"}
    - {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
):
    setattr(ReconnectingRDBStorage, _name, tracking.reconnecting(getattr(RDBStorage, _name)))


def build_storage(
    url: str, heartbeat_interval: int, grace_period: int | None, stale_trial_callback: Callable | None
) -> RDBStorage:
    """The storage at ``url``: a trial silent for ``grace_period`` seconds (default: two heartbeat
    intervals) is failed and given to ``stale_trial_callback``. ConfigError for an unusable URL."""
    engine_kwargs = {"pool_pre_ping": True}  # a connection a restart cut is replaced, not used
    if tracking.sqlite_file(url):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    try:
        with tracking.DatabaseLock(url, SCHEMA_LOCK):
            return ReconnectingRDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=stale_trial_callback,
            )
    except Exception as err:  # SQLAlchemy and drivers raise many types for an unusable URL
        cause = tracking.root_cause(err)
        raise ConfigError(
            f"--storage {masked(url)}: {type(cause).__name__}: {first_line(cause)} "
            "(expected sqlite:///FILE, postgresql://... or mysql+pymysql://...)"
        ) from None


def masked(url: str) -> str:
    """``url`` with its password hidden, as it may be shown or stored in MLflow."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url
