"""The options of a training run: :class:`FitConfig`, and :class:`ModelFlags` for the model
options that have flags of their own.

``python -m ferlight.fit`` and ``ferlight.sweep`` build their ``--options`` from these fields (with
dashes), ``--config FILE`` reads the same names (with underscores) from YAML, study files search
them, and the resolved config is what every MLflow run stores as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional, Sequence, Union

import yaml

from ferlight.models import model_options as accepted_options
from ferlight.options import (
    AUGMENTATIONS,
    DROPOUT_PLACEMENTS,
    LABEL_SETS,
    OPTIMIZERS,
    PROTOCOLS,
    SCHEDULERS,
    TTA_MODES,
    build_parser,
    option,
    to_dataclass,
)


@dataclass
class ModelFlags:
    """Model options with command-line flags of their own; a run keeps them in
    ``FitConfig.model_options``, which reach ``create_model`` for the architectures that have them."""

    dropout_placement: Optional[Literal[DROPOUT_PLACEMENTS]] = option(None, "VGG dropout after every / every other block (default: the model's)")
    dropout: Optional[float] = option(None, "dropout probability (default: the model's)")


@dataclass
class FitConfig:
    """Everything that defines a training run. Defaults are the paper's best model and settings."""

    arch: str = option("attention", "architecture from ferlight.models.list_models()")
    data: Optional[str] = option(None, "FER2013 csv/csv.gz, image-folder root or .u8.xz (default: $FERLIGHT_DATA, ./data/)")
    protocol: Literal[PROTOCOLS] = option("paper", "paper: Training 90/10, test Public+Private; standard: val PublicTest, test PrivateTest")
    labels: Literal[LABEL_SETS] = option("fer2013", "FER2013 labels, or FER+ majority labels (8 classes)")
    ferplus: Optional[str] = option(None, "fer2013new.csv (default: beside the FER2013 file)")
    optimizer: Literal[OPTIMIZERS] = option("adam", "optimiser (sgd uses Nesterov momentum)")
    lr: float = option(1e-3, "learning rate (peak rate for onecycle)")
    weight_decay: float = option(0.0, "weight decay")
    momentum: float = option(0.9, "momentum for sgd")
    scheduler: Literal[SCHEDULERS] = option("none", "learning-rate schedule")
    batch_size: int = option(64, "batch size per device")
    epochs: int = option(30, "training epochs")
    model_options: dict[str, Any] = option({}, "keyword options for create_model, e.g. {width: 32}; --dropout and --dropout-placement set two of them")
    augment: Literal[AUGMENTATIONS] = option("none", "training augmentation, on whole batches on the device")
    crop_size: int = option(48, "training crop size (40/44 with --augment strong; evaluation uses the centre crop)")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")
    class_weights: bool = option(False, "weight the loss by inverse class frequency")
    tta: Literal[TTA_MODES] = option("none", "test-time augmentation of the final test")
    channels_last: bool = option(True, "channels_last memory format (faster convolutions on CPU and GPU)")
    seed: int = option(42, "random seed (training; the paper protocol's split has its own fixed seed)")
    accelerator: str = option("auto", "cpu, gpu, auto ...")
    devices: Union[int, str] = option("auto", "devices per node: a number, 'auto' or a list such as '0,1'")
    strategy: str = option("auto", "auto, ddp, ddp_spawn, ...")
    num_nodes: int = option(1, "machines taking part (DDP)")
    precision: Optional[str] = option("auto", "auto (the fastest on this machine: bf16-mixed on bf16 GPUs, 16-mixed on older ones, bf16-mixed on a CPU only where measured faster, else 32-true), or 32-true, bf16-mixed, 16-mixed ...")
    limit_train_batches: Optional[Union[int, float]] = option(None, "train on this many batches (or this fraction) per epoch")
    max_time: Optional[str] = option(None, "time budget DD:HH:MM:SS: the one-cycle/cosine schedule follows the share spent and ends, annealed, within it (epochs is then an upper bound); the best checkpoint is still tested")
    fast_dev_run: bool = option(False, "one batch of train, val and test, to check the set-up")
    progress_bar: bool = option(True, "Lightning's progress bar (progress and ETA) on a terminal; otherwise, or when false, one line an epoch with its figures")
    num_workers: int = option(0, "DataLoader workers (the data is in memory: 0 is usually fastest)")
    experiment: str = option("ferlight", "MLflow experiment")
    run_name: Optional[str] = option(None, "MLflow run name (default: ARCH-PROTOCOL-LABELS)")
    tracking_uri: Optional[str] = option(None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    resume: Optional[str] = option(None, "'auto' (newest unfinished run of this experiment and run name) or a last.ckpt path")
    init_weights: Optional[str] = option(None, "fine-tune: start from this model's weights (a checkpoint, an MLflow model URI, or 'default': the shipped model); same architecture and classes")
    register_model: Optional[str] = option(None, "register the run's logged model under this name in the MLflow Model Registry")
    system_metrics: bool = option(False, "log MLflow's system metrics (CPU, memory; GPU utilisation and memory on a GPU): pip install 'ferlight[system-metrics]'")
    checkpoint_dir: str = option("checkpoints", "local folder for checkpoints (the best is also logged to MLflow)")
    cache_dir: Optional[str] = option(None, "parsed-data cache (default: $FERLIGHT_CACHE or ~/.cache/ferlight)")

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.arch}-{self.protocol}-{self.labels}"

    def with_settings(self, settings: Mapping) -> FitConfig:
        """This config with ``settings`` (FitConfig fields or ModelFlags names) applied; model
        flags the architecture does not have are dropped (a VGG dropout placement means nothing to a
        ResNet)."""
        flags = {name: value for name, value in settings.items() if name in MODEL_FLAGS}
        cfg = dataclasses.replace(self, **{k: v for k, v in settings.items() if k not in flags})
        merged = {**cfg.model_options, **{k: v for k, v in flags.items() if v is not None}}
        accepted = accepted_options(cfg.arch)
        kept = {k: v for k, v in merged.items() if k in accepted or k not in MODEL_FLAGS}
        return dataclasses.replace(cfg, model_options=kept)

    def to_yaml(self) -> str:
        """The config as YAML that ``--config`` reads back."""
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)


MODEL_FLAGS = tuple(f.name for f in dataclasses.fields(ModelFlags))


def fit_parser(prog: str, description: str, *classes):
    """The parser of ``python -m ferlight.fit``'s options (FitConfig and ModelFlags), plus ``classes``."""
    return build_parser(prog, description, FitConfig, ModelFlags, *classes)


def to_fit_config(namespace) -> FitConfig:
    """The FitConfig of parsed options, the model flags that were given folded into ``model_options``."""
    cfg = to_dataclass(namespace, FitConfig)
    flags = {name: value for name, value in dataclasses.asdict(to_dataclass(namespace, ModelFlags)).items() if value is not None}
    return dataclasses.replace(cfg, model_options={**cfg.model_options, **flags})
