"""Fixtures of the tracking tests (``mlflow_store`` belongs in tests/conftest.py: the study tests define the same)."""

from __future__ import annotations

import shutil

import pytest

from ferlight.tracking.store import ensure_store


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
