"""Training images/s of ferlight's Lightning path against a hand-written PyTorch loop, in float32
and in bf16 autocast side by side, on the machine named in the first line of the output.

Both loops train the same model on the same in-memory FER2013 training images with the same batch
size, optimiser, augmentation and memory format; only the loop differs. The Lightning side is what
``python -m ferlight.fit`` runs: FER2013DataModule, EmotionClassifier with its torchmetrics, the
MLflow logger and the checkpoint callback. The two alternate (hand, Lightning, hand, ...) so that
load on a shared machine hits both alike, and the median of the repeats is reported. The last line
is what ``--precision auto`` chooses here for the same model and batch.

    python bench/bench_fit.py [--data ../shared/data/fer2013.csv.gz] [--arch fervgg_small]
    ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_fit.py --batches 20 --repeats 1   # a CPU without native bf16
    python bench/bench_fit.py --device cuda --batches 300   # on a GPU
"""

from __future__ import annotations

from ferlight.hardware import machine as hardware

hardware.prefer_passive_openmp()  # as python -m ferlight.fit does, before torch loads

import argparse  # noqa: E402 (the imports below load torch)
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from ferlight.hardware import precision
from ferlight.tracking import runs
from ferlight.training.config import FitConfig
from ferlight.data import BatchAugment
from ferlight.data.preprocess import normalize
from ferlight.training.run import build_datamodule, build_module

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.csv.gz"


def _sync() -> None:
    """Wait for queued GPU work, so that a clock read counts it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class EpochTimer(Callback):
    """Wall time of the training batches of one epoch (set-up and validation excluded)."""

    def on_train_epoch_start(self, trainer, pl_module):
        _sync()
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        _sync()
        self.seconds = time.perf_counter() - self.start


def lightning_images_per_s(cfg: FitConfig, batches: int, workdir: Path) -> float:
    """What ``ferlight.fit`` runs, timed over ``batches`` training batches."""
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    module = build_module(cfg, dm)
    timer = EpochTimer()
    logger = runs.create_logger("bench", "lightning", f"sqlite:///{workdir}/mlflow.db")
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=batches, limit_val_batches=0, accelerator=cfg.accelerator, devices=1,
        precision=cfg.precision,
        logger=logger, callbacks=[timer], default_root_dir=workdir, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(module, dm)
    return batches * cfg.batch_size / timer.seconds


def hand_images_per_s(cfg: FitConfig, batches: int) -> float:
    """The loop a PyTorch user writes: index tensors already on the device, augment, step."""
    device = torch.device("cuda" if cfg.accelerator == "gpu" else "cpu")
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = (torch.from_numpy(a).to(device) for a in dm.split_arrays("train"))
    model = build_module(cfg, dm).model.train().to(device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    augment = BatchAugment(cfg.augment, cfg.crop_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16-mixed")
    order = torch.randperm(len(images), device=device)
    _sync()
    start = time.perf_counter()
    for b in range(batches):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        x = augment(normalize(images[idx])).contiguous(memory_format=memory_format)
        with autocast:
            loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync()
    return batches * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--arch", default="fervgg_small")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--augment", default="strong")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precisions", nargs="+", choices=["32-true", "bf16-mixed"], default=["32-true", "bf16-mixed"])
    args = parser.parse_args()
    crop = 44 if args.augment == "strong" else 48
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    print(f"machine: {hardware.summary()}")
    print(f"{args.arch}, batch {args.batch_size}, {crop} px crops, augment {args.augment}, "
          f"{args.batches} batches x {args.repeats} repeats, median images/s (runs)")
    print()
    print("| precision | hand-written loop | ferlight (Lightning) | Lightning overhead |")
    print("|---|---|---|---|")
    medians = {}
    for name in args.precisions:
        cfg = FitConfig(arch=args.arch, data=args.data, protocol="standard", batch_size=args.batch_size,
                        augment=args.augment, crop_size=crop, accelerator=accelerator, precision=name)
        hand, lightning = [], []
        with tempfile.TemporaryDirectory() as tmp:
            hand_images_per_s(cfg, 3)  # warm-up: caches, allocator, thread pools, oneDNN primitives
            for _ in range(args.repeats):
                hand.append(hand_images_per_s(cfg, args.batches))
                lightning.append(lightning_images_per_s(cfg, args.batches, Path(tmp)))
        h, lt = statistics.median(hand), statistics.median(lightning)
        medians[name] = lt
        print(f"| {name} | {h:.1f} ({', '.join(f'{v:.1f}' for v in hand)}) | "
              f"{lt:.1f} ({', '.join(f'{v:.1f}' for v in lightning)}) | {100 * (h - lt) / h:+.1f}% |", flush=True)
    print()
    if len(medians) == 2:
        print(f"bf16 / float32 (ferlight): {medians['bf16-mixed'] / medians['32-true']:.2f}x")
    dm_cfg = FitConfig(arch=args.arch, data=args.data, protocol="standard", batch_size=args.batch_size, crop_size=crop)
    dm = build_datamodule(dm_cfg)
    dm.prepare_data()
    dm.setup("fit")
    with tempfile.TemporaryDirectory() as tmp:  # measured afresh, not from the cache
        decision = precision.resolve_training_precision(
            "auto", accelerator, build_module(dm_cfg, dm).model, args.batch_size, crop, True, cache_dir=tmp
        )
    print(decision.line())


if __name__ == "__main__":
    main()
