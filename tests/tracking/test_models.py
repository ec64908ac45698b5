"""Logged models and the registry: a run's model loads back by every URI form, the champion alias
moves only on a better validation accuracy, and a bad URI or name is one clear line."""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pytest

from ferlight import tracking
from ferlight.data import CLASS_NAMES
from ferlight.errors import CheckpointError, ConfigError
from ferlight.inference.pyfunc import CHECKPOINT, EmotionModel, input_example, signature
from ferlight.tracking import models


@pytest.fixture
def logged(mlflow_store, checkpoint):
    """A run with ferlight's model logged on it: (run id, model URI)."""
    client = tracking.client(mlflow_store)
    run_id = tracking.create_run(client, "ferlight", "logged", {})
    faces = np.zeros((1, 48, 48), dtype=np.uint8)
    uri = models.log_model(run_id, EmotionModel(), {CHECKPOINT: checkpoint}, signature(CLASS_NAMES),
                           input_example(faces), ["torch"], tracking_uri=mlflow_store)
    return run_id, uri


@pytest.fixture
def fluent_uri(mlflow_store):
    """MLflow's fluent API aimed at the test's store for the test."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_store)
    yield
    mlflow.set_tracking_uri(before)


def test_the_model_loads_by_run_model_and_registry_uris(logged, mlflow_store, checkpoint, fluent_uri):
    run_id, uri = logged
    version = models.register_model(uri, "fer", 0.5, mlflow_store)
    for model_uri in (uri, f"runs:/{run_id}/model", f"models:/fer/{version}"):
        assert mlflow.pyfunc.load_model(model_uri).metadata.signature is not None, model_uri
        assert models.model_checkpoint(model_uri, mlflow_store).read_bytes() == checkpoint.read_bytes()
    outputs = tracking.client(mlflow_store).get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [uri.removeprefix("models:/")]  # the run page lists it


def test_champion_moves_only_on_a_better_validation_accuracy(logged, mlflow_store):
    _, uri = logged
    moved = []
    for score in (0.5, 0.4, 0.6, 0.6):
        version = models.register_model(uri, "fer", score, mlflow_store)
        moved.append(models.promote_if_better("fer", version, mlflow_store))
    assert moved == [True, False, True, False]
    champion = tracking.client(mlflow_store).get_model_version_by_alias("fer", models.CHAMPION)
    assert int(champion.version) == 3


def test_a_champion_set_by_another_worker_meanwhile_is_judged_again(logged, mlflow_store, monkeypatch):
    """The race of two workers that both find no champion: the second's write is refused (as an MLflow
    server on PostgreSQL refuses it), so it reads the champion the first set and keeps it if better."""
    from mlflow.exceptions import MlflowException

    _, uri = logged
    first, second = (models.register_model(uri, "fer", score, mlflow_store) for score in (0.6, 0.5))
    registry = tracking.client(mlflow_store)
    real_read, real_write = registry.get_model_version_by_alias, registry.set_registered_model_alias
    state = {"reads": 0}

    def read(name, alias):  # the second worker's first read comes before the first worker's write
        state["reads"] += 1
        if state["reads"] == 1:
            raise MlflowException("no alias")
        return real_read(name, alias)

    def write(name, alias, version):  # the first worker wins the race
        if state["reads"] == 1:
            real_write(name, alias, str(first))
            raise MlflowException("duplicate key value violates unique constraint")
        return real_write(name, alias, version)

    monkeypatch.setattr(registry, "get_model_version_by_alias", read)
    monkeypatch.setattr(registry, "set_registered_model_alias", write)
    monkeypatch.setattr(models, "client", lambda uri=None: registry)
    assert models.promote_if_better("fer", second, mlflow_store) is False  # 0.5 does not beat 0.6
    assert int(real_read("fer", models.CHAMPION).version) == first


def test_bad_uris_and_names_are_one_line(logged, mlflow_store):
    _, uri = logged
    for bad in ("models:/nobody/1", "models:/nobody@champion", "runs:/0123456789abcdef/model"):
        with pytest.raises(CheckpointError, match=f"no ferlight model at {bad}") as err:
            models.model_checkpoint(bad, mlflow_store)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="has no '/' or '@'"):
        models.register_model(uri, "a/b", 0.5, mlflow_store)
    assert not tracking.client(mlflow_store).search_registered_models()  # nothing half-registered


def test_logging_a_model_leaves_mlflows_tracking_uri_as_it_was(mlflow_store, checkpoint, monkeypatch, tmp_path):
    """MLflow's set_tracking_uri also sets $MLFLOW_TRACKING_URI, which ferlight reads for its default store."""
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)  # what a caller's fluent API was aimed at
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    client = tracking.client(mlflow_store)
    run_id = tracking.create_run(client, "ferlight", "logged", {})
    models.log_model(run_id, EmotionModel(), {CHECKPOINT: checkpoint}, signature(CLASS_NAMES),
                     input_example(np.zeros((1, 48, 48), np.uint8)), ["torch"], tracking_uri=mlflow_store)
    assert mlflow.get_tracking_uri() == elsewhere and "MLFLOW_TRACKING_URI" not in os.environ
    mlflow.set_tracking_uri(None)
