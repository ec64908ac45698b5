"""A run's inputs as MLflow datasets: each split of the data it trained, validated and tested on,
with a digest of the parsed arrays, so runs on the same data show the same digest and a changed
file shows a new one."""

from __future__ import annotations

import hashlib
import warnings
from typing import Mapping

import numpy as np

CONTEXTS = {"train": "training", "val": "validation", "test": "test"}


def digest(images: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of every pixel and label (MLflow's own digest samples rows)."""
    h = hashlib.sha256()
    for array in (images, labels):
        h.update(str((array.dtype, array.shape)).encode())
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()[:16]


def log_splits(
    client,
    run_id: str,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    source: str,
    prefix: str,
    tags: Mapping[str, str],
) -> None:
    """Log each split (name ``PREFIX-SPLIT``, e.g. ``fer2013-standard-train``) as an input of the
    run, with its context (training, validation, test), ``tags`` and its row count."""
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for split, (images, labels) in splits.items():
        with warnings.catch_warnings():  # a local file matches two of MLflow's source kinds, both local
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(
                images, targets=labels, source=source, name=f"{prefix}-{split}", digest=digest(images, labels)
            )
        split_tags = {MLFLOW_DATASET_CONTEXT: CONTEXTS.get(split, split), **tags, "rows": str(len(labels))}
        inputs.append(DatasetInput(Dataset(**dataset.to_dict()), [InputTag(k, v) for k, v in split_tags.items()]))
    client.log_inputs(run_id, datasets=inputs)
