"""Where a ``ferlight.fit`` run keeps its best checkpoint in MLflow, and how to get it back."""

from __future__ import annotations

from pathlib import Path

from ferlight.errors import CheckpointError, first_line
from ferlight.tracking.store import ensure_store

BEST_CHECKPOINT = "best.ckpt"
CHECKPOINT_ARTIFACTS = "checkpoints"  # the artifact folder of the run that holds BEST_CHECKPOINT


def best_checkpoint(run_id: str, tracking_uri: str | None = None) -> Path:
    """Download (or locate) the best checkpoint a ``ferlight.fit`` run logged."""
    import mlflow

    uri = ensure_store(tracking_uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{CHECKPOINT_ARTIFACTS}/{BEST_CHECKPOINT}", tracking_uri=uri
        )
    except Exception as err:
        raise CheckpointError(
            f"no best checkpoint for MLflow run {run_id!r} in {uri}: {type(err).__name__}: {first_line(err)}"
        ) from None
    return Path(local)
