"""``python -m ferlight.evaluate``: score checkpoints on a split, with test-time augmentation.

    python -m ferlight.evaluate --checkpoint best.ckpt --protocol standard --split test --tta tencrop
    python -m ferlight.evaluate --run-id RUN --log true      # the run's best checkpoint; log the result
    python -m ferlight.evaluate --checkpoint a.ckpt b.ckpt           # an ensemble
    python -m ferlight.evaluate                              # the model shipped with ferlight

Prints the paper-layout classification report and the accuracy, naming protocol, split and views.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from ferlight.hardware.machine import prefer_passive_openmp

prefer_passive_openmp()  # before any import below loads torch: OpenMP reads the policy once, at load

from ferlight.inference.checkpoint import load_model, resolve_checkpoint
from ferlight.options import (
    INFERENCE_PRECISIONS,
    LABEL_SETS,
    PROTOCOLS,
    SPLITS,
    TTA_MODES,
    build_parser,
    parse_namespace,
    to_dataclass,
)
from ferlight.data import load_fer2013, split_protocol
from ferlight.errors import ConfigError, exit_on_error
from ferlight.evaluation.predict import evaluate, precision_decision
from ferlight.evaluation.reports import format_report, write_report
from ferlight import tracking
from ferlight.inference import pyfunc


@dataclass
class EvalConfig:
    """What to evaluate, on which data and split, and how."""

    checkpoint: list[str] = field(default_factory=list, metadata={"help": "checkpoint(s); several make an ensemble (default: the shipped model)"})
    run_id: list[str] = field(default_factory=list, metadata={"help": "MLflow run(s) whose best checkpoint to evaluate"})
    tracking_uri: Optional[str] = field(default=None, metadata={"help": "MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"})
    data: Optional[str] = field(default=None, metadata={"help": "FER2013 file or folder (default: $FERLIGHT_DATA, ./data/)"})
    protocol: Literal[PROTOCOLS] = field(default="standard", metadata={"help": "evaluation protocol"})
    labels: Literal[LABEL_SETS] = field(default="fer2013", metadata={"help": "label set"})
    ferplus: Optional[str] = field(default=None, metadata={"help": "fer2013new.csv for --labels ferplus"})
    split: Literal[SPLITS] = field(default="test", metadata={"help": "split of the protocol to score"})
    tta: Literal[TTA_MODES] = field(default="none", metadata={"help": "test-time augmentation"})
    batch_size: int = field(default=256, metadata={"help": "faces per forward pass"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, cuda:1 ..."})
    precision: Literal[INFERENCE_PRECISIONS] = field(default="auto", metadata={"help": "auto: bf16 autocast where measurably faster on this machine (bf16 GPUs, CPUs with native bf16), else float32"})
    log: bool = field(default=False, metadata={"help": "log metrics and report to the (single) --run-id"})
    log_model: bool = field(default=False, metadata={"help": "log the (single) checkpoint, e.g. the shipped model, as an MLflow model in a new run with this evaluation"})
    register_model: Optional[str] = field(default=None, metadata={"help": "with --log-model: register the model under this name"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "parsed-data cache folder"})


def checkpoint_paths(cfg: EvalConfig) -> list[Path]:
    """The checkpoints named directly or through MLflow runs; the shipped model when none is."""
    paths = [resolve_checkpoint(path, tracking_uri=cfg.tracking_uri) for path in cfg.checkpoint]
    paths += [resolve_checkpoint(run_id=run_id, tracking_uri=cfg.tracking_uri) for run_id in cfg.run_id]
    return paths or [resolve_checkpoint()]


def run_evaluation(cfg: EvalConfig):
    """Load the models and the split, evaluate, and (with ``log``) record the result in MLflow."""
    if cfg.log and len(cfg.run_id) != 1:
        raise ConfigError("--log needs exactly one --run-id to log to")
    if cfg.register_model and not cfg.log_model:
        raise ConfigError("--register-model needs --log-model")
    paths = checkpoint_paths(cfg)
    if cfg.log_model and len(paths) != 1:
        raise ConfigError("--log-model logs one checkpoint, not an ensemble")
    models = [load_model(path, cfg.device) for path in paths]
    data = load_fer2013(cfg.data, labels=cfg.labels, ferplus_path=cfg.ferplus, cache_dir=cfg.cache_dir)
    if tuple(data.class_names) != models[0].class_names:
        raise ConfigError(f"the model predicts {models[0].class_names}, the data has {tuple(data.class_names)}: check --labels")
    index = split_protocol(data, cfg.protocol)[cfg.split]
    precision = cfg.precision
    if precision == "auto":
        decision = precision_decision(models, cfg.tta, cfg.batch_size, cfg.device, cache_dir=cfg.cache_dir)
        print(decision.line(), file=sys.stderr, flush=True)
        precision = decision.precision
    result = evaluate(models, data.images[index], data.labels[index], cfg.tta, cfg.batch_size, cfg.device, precision)
    result.precision = precision
    if cfg.log:
        _log(cfg, result, cfg.run_id[0])
    if cfg.log_model:
        _log_model(cfg, result, paths[0], models[0].class_names, data.images[index][:2])
    return result


def _log(cfg: EvalConfig, result, run_id: str) -> None:
    client = tracking.client(tracking.ensure_store(cfg.tracking_uri))
    key = f"eval/{cfg.protocol}/{cfg.split}/{cfg.tta}"
    tracking.log_metrics(client, run_id, {f"{key}/acc": result.accuracy, f"{key}/f1_macro": result.report["macro avg"]["f1-score"]})
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_report(result.report, tmp)
        tracking.log_artifacts(client, run_id, paths, f"evaluation/{cfg.protocol}-{cfg.split}-{cfg.tta}")


def _log_model(cfg: EvalConfig, result, checkpoint: Path, class_names, example_faces) -> None:
    """A new run holding this evaluation and the checkpoint as a pyfunc model (registered if asked,
    without a validation score: the champion alias follows validation accuracy only)."""
    client = tracking.client(tracking.ensure_store(cfg.tracking_uri))
    run_id = tracking.create_run(client, "ferlight", f"evaluate-{checkpoint.stem}", {"ferlight.kind": "evaluation"})
    _log(cfg, result, run_id)
    model_uri = tracking.log_model(
        run_id, pyfunc.EmotionModel(), {pyfunc.CHECKPOINT: checkpoint}, pyfunc.signature(class_names),
        pyfunc.input_example(example_faces), pyfunc.requirements(), {"tta": cfg.tta}, cfg.tracking_uri,
    )
    if cfg.register_model:
        tracking.register_model(model_uri, cfg.register_model, None, cfg.tracking_uri)
    tracking.set_status(client, run_id, "FINISHED")
    print(f"MLflow model {model_uri} in run {run_id}", file=sys.stderr)


@exit_on_error
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m ferlight.evaluate", "Evaluate ferlight checkpoints on FER2013.", EvalConfig)
    cfg = to_dataclass(parse_namespace(parser, argv), EvalConfig)
    result = run_evaluation(cfg)
    print(format_report(result.report))
    n = int(result.confusion.sum())
    print(f"accuracy {result.accuracy:.4f} on {n} faces: protocol {cfg.protocol}, split {cfg.split}, tta {cfg.tta}, "
          f"{len(cfg.checkpoint) + len(cfg.run_id) or 1} model(s), precision {result.precision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
