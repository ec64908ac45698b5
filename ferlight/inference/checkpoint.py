"""Load a trained model from a ferlight checkpoint, with torch alone (no Lightning, no training code).

A ferlight checkpoint is a Lightning checkpoint of :class:`ferlight.training.classifier.EmotionClassifier` (or
the slim copy that :func:`save_slim` writes, as shipped in ``ferlight/weights``): a dict whose
``hyper_parameters`` hold ``arch``, ``model_options``, ``class_names`` and ``crop_size``, and whose
``state_dict`` holds the model's weights under the ``model.`` prefix. It loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ferlight.atomic import atomic_output
from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.errors import CheckpointError, ConfigError, FerlightError, first_line
from ferlight.models import LoadedModel, create_model
from ferlight.tracking.models import is_model_uri, model_checkpoint
from ferlight.weights import DEFAULT_WEIGHTS

PREFIX = "model."
REQUIRED = ("arch", "class_names")


def resolve_checkpoint(
    path: str | os.PathLike | None = None, run_id: str | None = None, tracking_uri: str | None = None
) -> Path:
    """The checkpoint to load: ``path`` (a file, or an MLflow model URI: ``runs:/ID/model``,
    ``models:/NAME@champion``, ``models:/NAME/3``), the best checkpoint of MLflow run ``run_id``,
    or the shipped default model when neither is given."""
    if path is not None and run_id is not None:
        raise ConfigError("give a checkpoint path or an MLflow run id, not both")
    if run_id is not None:
        from ferlight.tracking.checkpoints import best_checkpoint  # MLflow is imported only when a run is asked for

        return best_checkpoint(run_id, tracking_uri)
    if is_model_uri(path):
        return model_checkpoint(path, tracking_uri)
    if path is not None:
        return Path(path)
    if not DEFAULT_WEIGHTS.is_file():
        raise CheckpointError(
            f"no checkpoint given and the default model {DEFAULT_WEIGHTS} is missing: "
            "pass a checkpoint path (--checkpoint) or an MLflow run id (--run-id)"
        )
    return DEFAULT_WEIGHTS


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's dict, checked to be a ferlight checkpoint; CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a ferlight checkpoint ({type(err).__name__}: {first_line(err)})") from None
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or any(k not in hparams for k in REQUIRED) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a ferlight checkpoint (no arch/class_names hyper-parameters or state_dict)")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model saved in ``path`` and load its weights, in eval mode on ``device``."""
    device = check_device(device)
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    options = dict(hp.get("model_options") or {})
    try:
        model = create_model(hp["arch"], num_classes=len(hp["class_names"]), **options)
        weights = {k[len(PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
        model.load_state_dict(weights)
    except (FerlightError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild model {hp['arch']!r}: {first_line(err)}") from None
    return LoadedModel(
        model=model.to(device).eval(),
        arch=hp["arch"],
        class_names=tuple(hp["class_names"]),
        crop_size=int(hp.get("crop_size", IMAGE_SIZE)),
        model_options=options,
    )


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device; ConfigError for a name torch does not know or a missing GPU."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available")
    return device


def save_slim(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False) -> None:
    """Write a weights-only copy of a checkpoint (hyper-parameters + model weights, no optimiser).

    ``half`` stores floating-point weights as float16 (half the size, for shipping); loading casts
    them back to the model's float32.
    """
    ckpt = read_checkpoint(src)
    weights = {k: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    slim = {"hyper_parameters": ckpt["hyper_parameters"], "state_dict": weights}
    with atomic_output(dst) as tmp:
        torch.save(slim, tmp)
