"""Everything MLflow: where runs are stored, the logger a Trainer gets, params and artifacts.

Default store: MLflow's embedded SQLite database ``sqlite:///mlflow.db`` with artifacts under
``./mlruns/``, so a bare ``mlflow ui`` started in the same folder shows every run. A server is used
through ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import urlparse

from ferlight.errors import CheckpointError, ConfigError
from ferlight.tracking.sqlite_lock import SqliteLock

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
BEST_CHECKPOINT = "best.ckpt"
CHECKPOINT_ARTIFACTS = "checkpoints"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The explicit URI, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working folder.

    The default is made absolute: MLflow caches one store per URI string, so a relative SQLite URI
    would keep pointing at the first folder it was used in.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri == DEFAULT_TRACKING_URI:
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    return uri


def client(uri: str | None = None):
    """An ``MlflowClient`` for the store at ``uri`` (resolved as above)."""
    import mlflow

    return mlflow.MlflowClient(resolve_tracking_uri(uri))


def ensure_store(uri: str | None = None) -> str:
    """Check that the tracking store answers (creating a SQLite schema once); return its URI."""
    import mlflow

    uri = resolve_tracking_uri(uri)
    try:
        with SqliteLock(uri):  # two processes creating the schema at once race
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # MLflow raises many types for an unusable store
        raise ConfigError(f"cannot use MLflow tracking URI {uri!r}: {_first_line(err)}") from None
    return uri


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


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
        raise ConfigError(f"cannot start an MLflow run in {uri!r}: {_first_line(err)}") from None
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


def flatten(params: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested dicts as MLflow params: ``{"model": {"width": 32}}`` -> ``{"model.width": 32}``."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def git_commit() -> str:
    """The commit of the ferlight checkout, or ``unknown`` for an installed copy."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def log_artifacts(logger, paths: Iterable[str | os.PathLike], artifact_path: str | None = None) -> None:
    """Upload local files to the logger's run."""
    for path in paths:
        logger.experiment.log_artifact(logger.run_id, str(path), artifact_path)


def set_tags(logger, tags: Mapping[str, str]) -> None:
    """Set (or overwrite) tags of the logger's run."""
    for key, value in tags.items():
        logger.experiment.set_tag(logger.run_id, key, value)


def set_status(logger, status: str) -> None:
    """Mark the logger's run FINISHED, FAILED or KILLED."""
    logger.experiment.set_terminated(logger.run_id, status)


def find_resumable_run(experiment: str, run_name: str, uri: str | None = None) -> str | None:
    """The newest run of ``experiment`` named ``run_name`` that did not finish, if any."""
    import mlflow

    client = mlflow.MlflowClient(ensure_store(uri))
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


def best_checkpoint(run_id: str, tracking_uri: str | None = None) -> Path:
    """Download (or locate) the best checkpoint a ``ferlight.fit`` run logged."""
    import mlflow

    uri = ensure_store(tracking_uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{CHECKPOINT_ARTIFACTS}/{BEST_CHECKPOINT}", tracking_uri=uri
        )
    except Exception as err:
        raise CheckpointError(f"no best checkpoint for MLflow run {run_id!r} in {uri}: {_first_line(err)}") from None
    return Path(local)
