"""One training run: data, model, Trainer and MLflow composed from a :class:`FitConfig`.

``run_fit`` is what ``python -m ferlight.fit`` and every sweep trial call. It trains, picks the
checkpoint with the best ``val/acc`` (never a test figure), tests it, and leaves in MLflow the
params, per-epoch metrics, test metrics, classification report, confusion matrix, attention maps
(for models that have them), the resolved ``config.yaml`` and the best checkpoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

import ferlight
from ferlight.hardware import machine as hardware
from ferlight.evaluation import plots, reports
from ferlight.tracking import checkpoints, datasets, models, runs
from ferlight.tracking.params import flatten, git_commit
from ferlight.tracking.store import resolve_tracking_uri
from ferlight.training.budget import TimeBudget
from ferlight.training.epoch_lines import EpochLines
from ferlight.training.interrupt import CtrlC
from ferlight.training.config import MODEL_FLAGS, FitConfig
from ferlight.data import FER2013DataModule
from ferlight.data.load import find_source
from ferlight.data.preprocess import eval_transform
from ferlight.inference import pyfunc
from ferlight.inference.checkpoint import load_model, resolve_checkpoint, save_slim
from ferlight.errors import ConfigError, PeerLost, first_line
from ferlight.options import options_for
from ferlight.models import list_models
from ferlight.training.classifier import EmotionClassifier
from ferlight.hardware.precision import AUTO, Decision, resolve_training_precision

LAST_CHECKPOINT = "last.ckpt"


@dataclass
class FitResult:
    """What a finished run left: its MLflow run, best checkpoint and final metrics."""

    run_id: str | None
    best_checkpoint: Path | None
    metrics: dict[str, float]


def build_datamodule(cfg: FitConfig) -> FER2013DataModule:
    return FER2013DataModule(**options_for(FER2013DataModule, cfg))


def build_module(cfg: FitConfig, dm: FER2013DataModule) -> EmotionClassifier:
    """The module with the config's options; the classes and class weights come from the data."""
    weights = dm.class_weights().tolist() if cfg.class_weights else None
    return EmotionClassifier(**{**options_for(EmotionClassifier, cfg), "class_names": dm.class_names, "class_weights": weights})


def init_weights(module: EmotionClassifier, source: str) -> None:
    """Load another model's weights into ``module`` before training (fine-tuning): a checkpoint path,
    an MLflow model URI or ``default`` (the shipped model). Its architecture, model options and
    classes must be the run's; a resumed run's checkpoint still wins over these weights."""
    loaded = load_model(resolve_checkpoint(None if source == "default" else source))
    hp = module.hparams
    theirs = (loaded.arch, loaded.model_options, loaded.class_names)
    ours = (hp.arch, dict(hp.model_options or {}), tuple(hp.class_names))
    if theirs != ours:
        raise ConfigError(
            f"--init-weights {source}: its model is {loaded.arch} {loaded.model_options} with {len(loaded.class_names)} classes, "
            f"this run's is {hp.arch} {ours[1]} with {len(ours[2])} classes"
        )
    module.model.load_state_dict(loaded.model.state_dict())


def _resume_point(cfg: FitConfig) -> tuple[str | None, str | None]:
    """(MLflow run id, checkpoint path) to continue from, or (None, None) for a fresh run.

    Checkpoints live in ``checkpoint_dir/<experiment id>/<run id>/checkpoints/``, so a
    ``last.ckpt`` path names its run, and ``auto`` finds the newest unfinished run of the same
    experiment and run name.
    """
    if cfg.resume is None:
        return None, None
    if cfg.resume == "auto":
        run_id = runs.find_resumable_run(cfg.experiment, cfg.resolved_run_name, cfg.tracking_uri)
        if run_id is None:
            return None, None
        found = sorted(Path(cfg.checkpoint_dir).glob(f"*/{run_id}/checkpoints/{LAST_CHECKPOINT}"))
        return run_id, (str(found[0]) if found else None)
    path = Path(cfg.resume)
    if not path.is_file():
        raise ConfigError(f"--resume: no checkpoint at {path}")
    return path.parent.parent.name, str(path)


def run_fit(cfg: FitConfig, callbacks: Sequence[Callback] = (), tags: dict | None = None) -> FitResult:
    """Train, select on validation, test and track one run; see the module docstring."""
    if cfg.arch not in list_models():
        raise ConfigError(f"unknown architecture {cfg.arch!r}; available: {', '.join(list_models())}")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.prepare_data()  # bad data fails here, before anything is written
    monitor = _system_metrics_monitor() if cfg.system_metrics else None
    dm.setup("fit")
    module = build_module(cfg, dm)
    if cfg.init_weights:
        init_weights(module, cfg.init_weights)

    run_id, ckpt_path = _resume_point(cfg)
    tags = {**hardware.tags(), **(tags or {})}
    logger = runs.create_logger(cfg.experiment, cfg.resolved_run_name, cfg.tracking_uri, run_id=run_id, tags=tags)
    if run_id is not None:  # a resumed run records the machine it continued on
        runs.set_tags(logger.experiment, logger.run_id, tags)
    precision = resolve_precision(cfg, module)
    best = ModelCheckpoint(monitor="val/acc", mode="max", filename="best", save_last=True)
    interrupt = CtrlC()
    budget = TimeBudget()
    bar = cfg.progress_bar and sys.stdout.isatty()  # Lightning's bar writes to stdout; in a file, a line a redraw
    if not bar:  # nor MLflow's bars, when it downloads the logged model's input example to validate it
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        max_time=cfg.max_time,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=precision.precision,
        limit_train_batches=cfg.limit_train_batches,
        fast_dev_run=cfg.fast_dev_run,
        enable_progress_bar=bar,
        logger=logger,
        callbacks=[best, LearningRateMonitor(logging_interval="epoch"), interrupt, budget, *([] if bar else [EpochLines()]),
                   *callbacks],
        default_root_dir=cfg.checkpoint_dir,
        log_every_n_steps=10,
        benchmark=True,  # cuDNN picks the fastest convolutions for the fixed input size (no effect on CPU)
    )
    if run_id is None:  # a resumed run keeps the params and inputs it was started with
        logger.log_hyperparams({**_params(cfg, module, trainer), "precision_resolved": precision.precision})
        if trainer.is_global_zero:
            _log_datasets(cfg, logger, dm)
    system_metrics = None
    if monitor is not None and trainer.is_global_zero:
        system_metrics = monitor(logger.run_id, tracking_uri=resolve_tracking_uri(cfg.tracking_uri))
        system_metrics.start()
    try:
        trainer.fit(module, dm, ckpt_path=ckpt_path)
    except SystemExit:
        if interrupt.interrupted and trainer.is_global_zero:
            runs.set_status(logger.experiment, logger.run_id, "KILLED")
        raise
    except Exception as err:  # Lightning has marked the run FAILED (rank 0)
        if trainer.world_size > 1 and _lost_peer(err):
            raise PeerLost(f"rank {trainer.global_rank} of {trainer.world_size}: another process of this DDP run was lost "
                           f"({first_line(err)[:160]}); the MLflow run is marked FAILED") from None
        raise
    finally:
        if system_metrics is not None:
            system_metrics.finish()
    logger.log_metrics(_budget_metrics(trainer, budget))
    best_path = Path(best.best_model_path) if best.best_model_path else None
    trainer.test(module, dm, ckpt_path=str(best_path) if best_path else None, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if best.best_model_score is not None:
        metrics["val/best_acc"] = float(best.best_model_score)
        logger.log_metrics({"val/best_acc": metrics["val/best_acc"]})
    if trainer.is_global_zero:
        _log_artifacts(cfg, logger, module, dm, best_path)
        if best_path is not None:
            model_uri = _log_model(cfg, logger, dm, best_path)
            if cfg.register_model:
                models.register_model(model_uri, cfg.register_model, metrics.get("val/best_acc"), cfg.tracking_uri)
        runs.set_status(logger.experiment, logger.run_id, "FINISHED")
    _close_process_group()
    return FitResult(run_id=logger.run_id, best_checkpoint=best_path, metrics=metrics)


def _lost_peer(err: BaseException) -> bool:
    """Whether a collective failed because another rank went away (gloo and NCCL say "peer")."""
    return isinstance(err, torch.distributed.DistError) or "peer" in str(err).lower()


def resolve_precision(cfg: FitConfig, module: EmotionClassifier) -> Decision:
    """``cfg.precision``, with ``auto`` (or unset) resolved for this machine; printed once."""
    if cfg.fast_dev_run and cfg.precision in (None, AUTO):
        decision = Decision("32-true", "fast_dev_run checks the set-up: one batch is not worth a benchmark")
    else:
        decision = resolve_training_precision(
            cfg.precision, cfg.accelerator, module.model, cfg.batch_size, cfg.crop_size, cfg.channels_last, cfg.cache_dir
        )
    if cfg.precision in (None, AUTO):
        _print_once(decision.line())
    return decision


@rank_zero_only
def _print_once(line: str) -> None:
    print(line, flush=True)


def _budget_metrics(trainer: L.Trainer, budget: TimeBudget) -> dict[str, float]:
    """How far training went: epochs (fractional when a budget stopped it mid-epoch), the final
    learning rate, and whether the time budget ended it with the schedule complete."""
    per_epoch = max(trainer.num_training_batches, 1) if trainer.num_training_batches != float("inf") else 1
    metrics = {"epochs_run": trainer.global_step / per_epoch if trainer.global_step else 0.0}
    if trainer.optimizers:
        metrics["lr_final"] = float(trainer.optimizers[0].param_groups[0]["lr"])
    schedules = [c.scheduler for c in trainer.lr_scheduler_configs if c.interval == "step"
                 and hasattr(c.scheduler, "last_epoch")]
    if schedules:  # one-cycle / cosine: did the rate reach the end of its curve?
        last = int(trainer.estimated_stepping_batches) - 1
        metrics["lr_schedule_complete"] = float(all(s.last_epoch >= last for s in schedules))
    if budget.active:
        metrics["budget/stopped_by_budget"] = float(budget.stopped_at is not None)
    return metrics


def _close_process_group() -> None:
    """End DDP explicitly: gloo threads still running at interpreter exit can abort the process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _params(cfg: FitConfig, module: EmotionClassifier, trainer: L.Trainer) -> dict:
    params = asdict(cfg)
    params.update(
        model=cfg.model_options,
        **{name: cfg.model_options.get(name) for name in MODEL_FLAGS},  # their own params, as flags
        ferlight_version=ferlight.__version__,
        git_commit=git_commit(),
        parameters=sum(p.numel() for p in module.model.parameters()),
        world_size=trainer.world_size,
    )
    return flatten({k: v for k, v in params.items() if k != "model_options"})


def _log_artifacts(cfg, logger, module: EmotionClassifier, dm: FER2013DataModule, best_path: Path | None) -> None:
    """Write the run's report files to a temporary folder and upload them."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = [reports.write_text(tmp / "config.yaml", cfg.to_yaml())]
        if module.test_confusion is not None:
            confusion = module.test_confusion.numpy()
            files += reports.write_report(reports.classification_report(confusion, module.class_names), tmp)
            files.append(plots.plot_confusion_matrix(confusion, module.class_names, tmp / "confusion_matrix.png"))
        if hasattr(module.model, "forward_with_attention"):
            files.append(_attention_figure(module, dm, tmp / "attention_maps.png"))
        runs.log_artifacts(logger.experiment, logger.run_id, files)
        if best_path is not None:
            runs.log_artifacts(logger.experiment, logger.run_id, [_as_best(best_path, tmp)], checkpoints.CHECKPOINT_ARTIFACTS)


def _log_datasets(cfg: FitConfig, logger, dm: FER2013DataModule) -> None:
    """The run's train, validation and test splits as MLflow dataset inputs."""
    splits = {split: dm.split_arrays(split) for split in ("train", "val", "test")}
    source = str(find_source(cfg.data).resolve())
    tags = {"protocol": cfg.protocol, "labels": cfg.labels}
    datasets.log_splits(logger.experiment, logger.run_id, splits, source, f"{cfg.labels}-{cfg.protocol}", tags)


def _log_model(cfg: FitConfig, logger, dm: FER2013DataModule, best_path: Path) -> str:
    """The best checkpoint as the run's pyfunc model (see ferlight.inference.pyfunc); its URI."""
    faces, _ = dm.split_arrays("test")
    with tempfile.TemporaryDirectory() as tmp:
        slim = Path(tmp) / "model.ckpt"
        save_slim(best_path, slim)
        return models.log_model(
            logger.run_id,
            pyfunc.EmotionModel(),
            {pyfunc.CHECKPOINT: slim},
            pyfunc.signature(dm.class_names),
            pyfunc.input_example(faces[:2]),
            pyfunc.requirements(),
            model_config={"tta": cfg.tta},
            tracking_uri=cfg.tracking_uri,
        )


def _system_metrics_monitor():
    """MLflow's system-metrics monitor class (it needs psutil, and pynvml for GPUs), or a ConfigError."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    except ImportError as err:
        raise ConfigError(f"--system-metrics needs {err.name}: pip install 'ferlight[system-metrics]'") from None
    return SystemMetricsMonitor


def _as_best(path: Path, tmp: Path) -> Path:
    """The best checkpoint under the fixed artifact name ``best.ckpt`` (a link, no copy)."""
    link = tmp / checkpoints.BEST_CHECKPOINT
    link.symlink_to(path.resolve())
    return link


@torch.inference_mode()
def _attention_figure(module: EmotionClassifier, dm: FER2013DataModule, path: Path) -> Path:
    """Attention over the first test face of each class (the paper's Figure 8)."""
    images, labels = dm.split_arrays("test")
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(len(module.class_names)) if (labels == c).any()]
    faces = images[picks]
    x = eval_transform(torch.from_numpy(faces), module.hparams.crop_size).to(module.device)
    module.eval()
    logits, attention = module.model.forward_with_attention(x.contiguous(memory_format=module.memory_format))
    return plots.plot_attention_maps(
        faces,
        attention[:, 0].float().cpu().numpy(),
        labels[picks],
        logits.argmax(1).cpu().numpy(),
        module.class_names,
        path,
    )
