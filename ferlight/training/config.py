"""The options of a training run, and the jsonargparse parser that reads them.

``FitConfig`` is the single source of truth: ``python -m ferlight.fit`` and ``ferlight.sweep``
build their ``--options`` from its fields (with dashes), ``--config FILE`` reads the same names
(with underscores) from YAML, and the resolved config is what every MLflow run stores as
``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional, Sequence, Union, get_args, get_origin, get_type_hints

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser

from ferlight.errors import ConfigError


def _opt(default, help: str):
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class FitConfig:
    """Everything that defines a training run. Defaults are the paper's best model and settings."""

    # Fields that are options of the model rather than of training (passed to create_model when set).
    MODEL_OPTION_FIELDS: ClassVar[tuple[str, ...]] = ("dropout_placement", "dropout")

    arch: str = _opt("attention", "architecture from ferlight.models.list_models()")
    data: Optional[str] = _opt(None, "FER2013 csv/csv.gz, image-folder root or .u8.xz (default: $FERLIGHT_DATA, ./data/)")
    protocol: Literal["paper", "standard"] = _opt("paper", "paper: Training 90/10, test Public+Private; standard: val PublicTest, test PrivateTest")
    labels: Literal["fer2013", "ferplus"] = _opt("fer2013", "FER2013 labels, or FER+ majority labels (8 classes)")
    ferplus: Optional[str] = _opt(None, "fer2013new.csv (default: beside the FER2013 file)")
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = _opt("adam", "optimiser (sgd uses Nesterov momentum)")
    lr: float = _opt(1e-3, "learning rate (peak rate for onecycle)")
    weight_decay: float = _opt(0.0, "weight decay")
    momentum: float = _opt(0.9, "momentum for sgd")
    scheduler: Literal["none", "plateau", "cosine", "onecycle"] = _opt("none", "learning-rate schedule")
    batch_size: int = _opt(64, "batch size per device")
    epochs: int = _opt(30, "training epochs")
    dropout_placement: Optional[Literal["none", "every", "alternate"]] = _opt(None, "VGG dropout after every / every other block (default: the model's)")
    dropout: Optional[float] = _opt(None, "dropout probability (default: the model's)")
    model_options: dict = _opt({}, "other keyword options for create_model, e.g. {width: 32}")
    augment: Literal["none", "strong"] = _opt("none", "training augmentation, on whole batches on the device")
    crop_size: int = _opt(48, "training crop size (40/44 with --augment strong; evaluation uses the centre crop)")
    label_smoothing: float = _opt(0.0, "label smoothing of the cross-entropy")
    class_weights: bool = _opt(False, "weight the loss by inverse class frequency")
    tta: Literal["none", "flip", "tencrop"] = _opt("none", "test-time augmentation of the final test")
    channels_last: bool = _opt(True, "channels_last memory format (faster convolutions on CPU and GPU)")
    seed: int = _opt(42, "random seed (training; the paper protocol's split has its own fixed seed)")
    accelerator: str = _opt("auto", "cpu, gpu, auto ...")
    devices: Union[int, str] = _opt("auto", "devices per node: a number, 'auto' or a list such as '0,1'")
    strategy: str = _opt("auto", "auto, ddp, ddp_spawn, ...")
    num_nodes: int = _opt(1, "machines taking part (DDP)")
    precision: Optional[str] = _opt("auto", "auto (the fastest on this machine: bf16-mixed on bf16 GPUs, 16-mixed on older ones, bf16-mixed on a CPU only where measured faster, else 32-true), or 32-true, bf16-mixed, 16-mixed ...")
    limit_train_batches: Optional[Union[int, float]] = _opt(None, "train on this many batches (or this fraction) per epoch")
    max_time: Optional[str] = _opt(None, "time budget DD:HH:MM:SS: the one-cycle/cosine schedule follows the share spent and ends, annealed, within it (epochs is then an upper bound); the best checkpoint is still tested")
    fast_dev_run: bool = _opt(False, "one batch of train, val and test, to check the set-up")
    progress_bar: bool = _opt(True, "show Lightning's progress bar (progress and ETA)")
    num_workers: int = _opt(0, "DataLoader workers (the data is in memory: 0 is usually fastest)")
    experiment: str = _opt("ferlight", "MLflow experiment")
    run_name: Optional[str] = _opt(None, "MLflow run name (default: ARCH-PROTOCOL-LABELS)")
    tracking_uri: Optional[str] = _opt(None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    resume: Optional[str] = _opt(None, "'auto' (newest unfinished run of this experiment and run name) or a last.ckpt path")
    checkpoint_dir: str = _opt("checkpoints", "local folder for checkpoints (the best is also logged to MLflow)")
    cache_dir: Optional[str] = _opt(None, "parsed-data cache (default: $FERLIGHT_CACHE or ~/.cache/ferlight)")

    @property
    def model_kwargs(self) -> dict:
        """Options for ``create_model``: ``model_options`` plus the dropout options that were set."""
        kwargs = dict(self.model_options)
        for name in self.MODEL_OPTION_FIELDS:
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.arch}-{self.protocol}-{self.labels}"

    def to_yaml(self) -> str:
        """The config as YAML that ``--config`` reads back."""
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)


def add_dataclass_arguments(parser: ArgumentParser, cls, skip: Sequence[str] = ()) -> None:
    """Add ``--field-name`` options (type, default and help from the dataclass) to ``parser``."""
    types = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kind, extra = types[f.name], {}
        if get_origin(kind) is list:  # --name A B C
            kind, extra = get_args(kind)[0], {"nargs": "+"}
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default, help=f.metadata.get("help"), **extra)


def build_parser(prog: str, description: str, cls=FitConfig) -> ArgumentParser:
    """A parser with ``--config FILE`` and one option per field of ``cls``."""
    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    add_dataclass_arguments(parser, cls)
    return parser


def parse_namespace(parser: ArgumentParser, argv: Sequence[str] | None):
    """Parse ``argv``; a bad option or config file becomes a one-line ConfigError."""
    try:
        return parser.parse_args(argv)
    except Exception as err:  # jsonargparse raises ArgumentError and others on bad values
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ConfigError(" ".join(lines[:2]) or "invalid arguments") from None


def to_config(namespace, cls=FitConfig):
    """The dataclass instance from a parsed namespace (``--config`` itself dropped)."""
    values = {f.name: namespace.get(f.name) for f in dataclasses.fields(cls) if f.name in namespace}
    return cls(**values)
