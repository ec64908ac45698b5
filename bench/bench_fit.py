"""Training images/s of ferlight's Lightning path against a hand-written PyTorch loop.

Both train the same model on the same in-memory FER2013 training images with the same batch size,
optimiser, augmentation and memory format; only the loop differs. The Lightning side is what
``python -m ferlight.fit`` runs: FER2013DataModule, EmotionClassifier with its torchmetrics, the
MLflow logger and the checkpoint callback. The two alternate (hand, Lightning, hand, ...) so that
load on a shared machine hits both alike, and the median of the repeats is reported.

    python bench/bench_fit.py [--data ../shared/data/fer2013.csv.gz] [--arch fervgg_small]
    python bench/bench_fit.py --device cuda --precision bf16-mixed --batches 300   # on a GPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from ferlight import tracking
from ferlight.config import FitConfig
from ferlight.data import BatchAugment
from ferlight.data.preprocess import normalize
from ferlight.training import build_datamodule, build_module

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
    logger = tracking.create_logger("bench", "lightning", f"sqlite:///{workdir}/mlflow.db")
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
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    args = parser.parse_args()
    cfg = FitConfig(arch=args.arch, data=args.data, protocol="standard", batch_size=args.batch_size,
                    augment=args.augment, crop_size=44 if args.augment == "strong" else 48,
                    accelerator="gpu" if args.device == "cuda" else "cpu", precision=args.precision)
    hand, lightning = [], []
    with tempfile.TemporaryDirectory() as tmp:
        hand_images_per_s(cfg, 5)  # warm-up: caches, allocator, thread pools
        for _ in range(args.repeats):
            hand.append(hand_images_per_s(cfg, args.batches))
            lightning.append(lightning_images_per_s(cfg, args.batches, Path(tmp)))
    h, lt = statistics.median(hand), statistics.median(lightning)
    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    print(f"machine: {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{args.arch}, batch {args.batch_size}, augment {args.augment}, {args.precision}, "
          f"{args.batches} batches x {args.repeats} repeats")
    print(f"hand-written loop : {h:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in hand)})")
    print(f"ferlight (Lightning): {lt:7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in lightning)})")
    print(f"Lightning overhead: {100 * (h - lt) / h:+.1f}%")


if __name__ == "__main__":
    main()
