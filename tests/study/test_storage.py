"""Where a study lives: the default SQLite file beside the MLflow store, heartbeats, the lock beside
the file, a password never shown, and an unusable URL as one ConfigError."""

from __future__ import annotations

import pytest
from optuna.storages import RDBStorage

from ferlight.errors import ConfigError
from ferlight.study.storage import build_storage, default_storage, masked


def test_default_storage_lies_beside_a_sqlite_mlflow_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_storage(f"sqlite:///{tmp_path}/runs/mlflow.db") == f"sqlite:///{tmp_path}/runs/optuna.db"
    assert default_storage() == f"sqlite:///{tmp_path}/optuna.db"  # the default store: the working folder
    assert default_storage("http://mlflow-host:5000") == f"sqlite:///{tmp_path}/optuna.db"


def test_storage_has_heartbeats_and_its_lock_beside_the_file(tmp_path):
    calls = []
    storage = build_storage(f"sqlite:///{tmp_path}/new/optuna.db", 5, None, lambda study, trial: calls.append(trial))
    assert isinstance(storage, RDBStorage) and (tmp_path / "new" / "optuna.db").is_file()
    assert storage.get_heartbeat_interval() == 5
    assert (tmp_path / "new" / "optuna.db.lock").exists()  # taken while the schema was made


def test_password_is_masked():
    assert masked("postgresql://optuna:secret@dbhost/optuna") == "postgresql://optuna:***@dbhost/optuna"
    assert masked("not a url") == "not a url"


@pytest.mark.parametrize("url", ["nosuch://host/db", "postgresql://optuna:secret@127.0.0.1:1/optuna"])
def test_unusable_storage_is_one_config_error(url):
    with pytest.raises(ConfigError) as err:
        build_storage(url, 60, None, lambda study, trial: None)
    message = str(err.value)
    assert message.startswith("--storage ") and "\n" not in message and "secret" not in message
