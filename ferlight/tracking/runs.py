"""MLflow runs: the logger a Trainer gets, a run made outside a Trainer (a study's parent run), the
run to resume, and what is written to a run afterwards (tags, params, metrics, artifacts, status).

The writers take a client and a run id. A Trainer's run hands over ``logger.experiment`` and
``logger.run_id``: on DDP ranks other than 0 that client is Lightning's do-nothing stand-in, so the
same calls are safe on every rank.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import urlparse

from ferlight.errors import ConfigError, first_line
from ferlight.tracking.store import client as store_client
from ferlight.tracking.store import ensure_store


def create_logger(experiment: str, run_name: str | None, uri: str | None = None, run_id: str | None = None, tags=None):
    """An ``MLFlowLogger`` whose run exists already (so its id and artifact folder are known)."""
    from lightning.pytorch.loggers import MLFlowLogger

    uri = ensure_store(uri)
    logger = MLFlowLogger(
        experiment_name=experiment, run_name=run_name, tracking_uri=uri, run_id=run_id, tags=tags, log_model=False
    )
    try:
        run = logger.experiment.get_run(logger.run_id)
    except Exception as err:
        raise ConfigError(f"cannot start an MLflow run in {uri!r}: {type(err).__name__}: {first_line(err)}") from None
    if run is not None:  # None on DDP ranks other than 0, whose logger does nothing
        _check_local_artifacts(run.info.artifact_uri)
    return logger


def _check_local_artifacts(artifact_uri: str) -> None:
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        return
    folder = Path(parsed.path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot write MLflow artifacts to {folder}: {err.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write MLflow artifacts to {folder}: permission denied")


def create_run(client, experiment: str, run_name: str, tags: Mapping[str, str]) -> str:
    """A new RUNNING run of ``experiment`` (made if missing), outside any Trainer; its id."""
    return client.create_run(_experiment_id(client, experiment), run_name=run_name, tags=dict(tags)).info.run_id


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another process created it meanwhile
        return client.get_experiment_by_name(name).experiment_id


def find_resumable_run(experiment: str, run_name: str, uri: str | None = None) -> str | None:
    """The newest run of ``experiment`` named ``run_name`` that did not finish, if any."""
    client = store_client(ensure_store(uri))
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}' and attributes.status != 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def run_exists(client, run_id: str) -> bool:
    """Whether the store holds run ``run_id`` (a store moved or replaced no longer does)."""
    try:
        client.get_run(run_id)
    except Exception:  # MlflowException: not in this tracking store
        return False
    return True


def run_status(client, run_id: str) -> str:
    """RUNNING, FINISHED, FAILED or KILLED."""
    return client.get_run(run_id).info.status


def set_tags(client, run_id: str, tags: Mapping[str, object]) -> None:
    """Set (or overwrite) tags of a run, in one request."""
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])


def log_params(client, run_id: str, params: Mapping[str, object]) -> None:
    """Log params of a run (write-once in MLflow), in one request."""
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])


def log_metrics(client, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log metrics of a run at ``step``."""
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=step)


def log_artifacts(client, run_id: str, paths: Iterable[str | os.PathLike], artifact_path: str | None = None) -> None:
    """Upload local files to a run (under ``artifact_path``, if given)."""
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path)


def set_status(client, run_id: str, status: str) -> None:
    """End a run FINISHED, FAILED or KILLED, or mark it RUNNING again (a resumed study's parent run)."""
    if status == "RUNNING":
        client.update_run(run_id, status=status)
    else:
        client.set_terminated(run_id, status)
