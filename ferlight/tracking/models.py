"""Logged MLflow models and the Model Registry: a run's pyfunc model, registered under a name,
the ``champion`` alias moved only by a better validation accuracy, and a model URI turned back
into the checkpoint it holds.

Model URIs: ``runs:/RUN_ID/model``, ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` (and
``models:/m-...``, a logged model's id).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from ferlight.errors import CheckpointError, ConfigError, first_line
from ferlight.tracking.store import client, ensure_store

MODEL = "model"  # the logged model's name in its run: runs:/RUN_ID/model
CHAMPION = "champion"
SCORE_TAG = "val_best_acc"  # a registered version's validation accuracy, which the alias follows
URI_SCHEMES = ("runs:/", "models:/")


def is_model_uri(text: str | os.PathLike | None) -> bool:
    return isinstance(text, str) and text.startswith(URI_SCHEMES)


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """MLflow's fluent functions aimed at ``uri`` for a while, and the caller's URI put back, with
    ``$MLFLOW_TRACKING_URI`` (which ``set_tracking_uri`` also sets, and ferlight reads)."""
    import mlflow

    before, environ = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if environ is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environ


def log_model(
    run_id: str,
    python_model: Any,
    artifacts: Mapping[str, str | os.PathLike],
    signature: Any,
    input_example: Any,
    pip_requirements: list[str],
    model_config: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Log ``python_model`` as the pyfunc model ``model`` of run ``run_id`` (then also reachable as
    ``runs:/RUN_ID/model``); its model URI, ``models:/m-...``."""
    import mlflow
    from mlflow.models import Model

    uri = ensure_store(tracking_uri)
    registry = client(uri)
    run = registry.get_run(run_id)
    # Made here rather than by Model.log, which would file it under the default experiment, where
    # neither the run's page nor runs:/RUN_ID/model finds it.
    logged = registry.create_logged_model(
        run.info.experiment_id, name=MODEL, source_run_id=run_id, params=dict(run.data.params), model_type="pyfunc"
    )
    with _tracking(uri):
        info = Model.log(
            artifact_path=None,
            name=MODEL,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=logged.model_id,
            python_model=python_model,
            artifacts={key: str(path) for key, path in artifacts.items()},
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            model_config=dict(model_config or {}),
        )
    return info.model_uri


def register_model(model_uri: str, name: str, score: float | None, tracking_uri: str | None = None) -> int:
    """Register ``model_uri`` as a new version of ``name`` (created if new), tagged with its
    validation accuracy; the version number."""
    import mlflow

    uri = ensure_store(tracking_uri)
    if not name or "/" in name or "@" in name:
        raise ConfigError(f"--register-model {name!r}: a registered model name has no '/' or '@'")
    try:
        with _tracking(uri):
            version = mlflow.register_model(model_uri, name, tags={SCORE_TAG: str(score)} if score is not None else None)
    except Exception as err:
        raise ConfigError(f"cannot register {model_uri} as {name!r}: {type(err).__name__}: {first_line(err)}") from None
    return int(version.version)


def promote_if_better(name: str, version: int, tracking_uri: str | None = None) -> bool:
    """Point ``name@champion`` at ``version`` if it has no champion yet or beats it on validation
    accuracy; whether the alias moved.

    Two sweep workers finishing together may both find no champion and both create the alias; an
    MLflow server on PostgreSQL refuses the second (a unique key), so the loser reads the champion
    again and decides against it."""
    from mlflow.exceptions import MlflowException

    registry = client(tracking_uri)
    score = _score(registry.get_model_version(name, str(version)))

    def claim() -> bool:
        try:
            champion = registry.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:  # no champion yet
            champion = None
        if champion is not None and (score is None or _score(champion) is not None and score <= _score(champion)):
            return False
        registry.set_registered_model_alias(name, CHAMPION, str(version))
        return True

    try:
        return claim()
    except MlflowException:  # another worker set the alias between this one's read and its write
        return claim()


def _score(version) -> float | None:
    value = (version.tags or {}).get(SCORE_TAG)
    return float(value) if value not in (None, "None") else None


def model_checkpoint(model_uri: str, tracking_uri: str | None = None) -> Path:
    """The checkpoint inside the logged model at ``model_uri``, downloaded (or located)."""
    import mlflow

    uri = ensure_store(tracking_uri)
    try:
        with _tracking(uri):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
        flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
        return local / flavor["artifacts"]["checkpoint"]["path"]
    except Exception as err:  # MLflow raises several types for a URI it cannot resolve
        raise CheckpointError(f"no ferlight model at {model_uri} in {uri}: {type(err).__name__}: {first_line(err)}") from None
