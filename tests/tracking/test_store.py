"""The tracking store: where it is (explicit, $MLFLOW_TRACKING_URI, or mlflow.db here, absolute),
a schema made once, and an unusable store as one ConfigError."""

from __future__ import annotations

import pytest

from ferlight.errors import ConfigError
from ferlight.tracking.store import client, ensure_store, resolve_tracking_uri


def test_the_explicit_uri_wins_then_the_environment_then_mlflow_db_here(workdir, monkeypatch):
    assert resolve_tracking_uri() == f"sqlite:///{workdir}/mlflow.db"  # absolute: MLflow caches stores by URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow-host:5000")
    assert resolve_tracking_uri() == "http://mlflow-host:5000"
    assert resolve_tracking_uri("sqlite:////data/runs.db") == "sqlite:////data/runs.db"


def test_a_new_store_gets_its_schema_beside_its_lock(empty_mlflow_db):
    """``empty_mlflow_db`` is ensure_store on a new SQLite file."""
    assert empty_mlflow_db.is_file() and empty_mlflow_db.with_name("mlflow.db.lock").exists()
    uri = f"sqlite:///{empty_mlflow_db}"
    assert ensure_store(uri) == uri
    assert [e.name for e in client(uri).search_experiments()] == ["Default"]


@pytest.mark.parametrize("uri", ["sqlite:////proc/ferlight/mlflow.db", "nosuch://host/store"])
def test_an_unusable_store_is_one_config_error(uri):
    with pytest.raises(ConfigError) as err:
        ensure_store(uri)
    assert str(err.value).startswith(f"cannot use MLflow tracking URI {uri!r}: ") and "\n" not in str(err.value)
