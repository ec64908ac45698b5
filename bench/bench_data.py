"""Data-layer benchmark: cold parse, warm load, and training-loader throughput, each beside its baseline.

    python bench/bench_data.py [--data ../shared/data/fer2013.csv.gz] [--repeats 3]

- cold parse: ferlight's reader on the gzip file and on a plain copy of it, against plain Python
  ``str.split`` on the plain copy (the issue's reference);
- warm load: ``load_fer2013`` in a fresh process once the cache is filled;
- loader: images per second from ``FER2013DataModule``'s train loader with the strong augmentation
  (batch indexing + ``BatchAugment`` on the batch, here on the CPU), against a per-sample
  ``Dataset`` with PIL transforms written the way torchvision's RandomCrop(padding=4),
  RandomHorizontalFlip, RandomRotation(10), ToTensor, Normalize and RandomErasing work.

Timings are the best of ``--repeats`` runs; torch runs with one thread for both loaders.
Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ferlight.data import FER2013DataModule, load_fer2013
from ferlight.data.kaggle_csv import read_fer2013_csv
from ferlight.data.preprocess import MEAN, STD

BATCH = 256


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def str_split_parse(path: Path) -> np.ndarray:
    """The baseline parser: plain Python str.split of every row and every pixel field."""
    lines = path.read_text().split("\n")[1:]
    images = np.empty((len(lines), 48 * 48), np.uint8)
    labels = np.empty(len(lines), np.int64)
    for row, line in enumerate(filter(None, lines)):
        emotion, pixels, _ = line.split(",")
        labels[row] = int(emotion)
        images[row] = np.array(pixels.split(" "), dtype=np.uint8)
    return images


def warm_load_in_a_fresh_process(source: Path, cache: Path) -> float:
    """Seconds ``load_fer2013`` takes in a new Python process once the cache is filled (imports excluded)."""
    code = (
        "import sys, time; from ferlight.data import load_fer2013; start = time.perf_counter(); "
        "load_fer2013(sys.argv[1], cache_dir=sys.argv[2]); print(time.perf_counter() - start)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(source), str(cache)], capture_output=True, text=True, check=True)
    return float(result.stdout)


class PilStyleDataset(Dataset):
    """The per-sample baseline: one PIL image per face, transformed as torchvision's transforms do."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i])
        padded = Image.new("L", (56, 56))  # RandomCrop(48, padding=4)
        padded.paste(image, (4, 4))
        top, left = random.randint(0, 8), random.randint(0, 8)
        image = padded.crop((left, top, left + 48, top + 48))
        if random.random() < 0.5:  # RandomHorizontalFlip
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = image.rotate(random.uniform(-10, 10), resample=Image.Resampling.BILINEAR)  # RandomRotation(10)
        x = torch.from_numpy(np.asarray(image, np.float32) / 255.0)[None]  # ToTensor
        x = (x - MEAN) / STD  # Normalize
        if random.random() < 0.5:  # RandomErasing(scale=(0.02, 0.2), ratio=(0.3, 3.3), value=0)
            area = random.uniform(0.02, 0.2) * 48 * 48
            aspect = math.exp(random.uniform(math.log(0.3), math.log(3.3)))
            h, w = min(48, round(math.sqrt(area * aspect))), min(48, round(math.sqrt(area / aspect)))
            top, left = random.randint(0, 48 - h), random.randint(0, 48 - w)
            x[:, top : top + h, left : left + w] = 0
        return x, int(self.labels[i])


def images_per_second(loader, batches: int, transform=lambda batch: batch) -> float:
    start, seen = time.perf_counter(), 0
    for k, batch in enumerate(loader):
        if k == batches:
            break
        x, y = transform(batch)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-batches", type=int, default=16, help="batches of 256 for the slow baseline loader")
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = Path(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "fer2013.csv"
        with gzip.open(source) as f, open(plain, "wb") as out:
            shutil.copyfileobj(f, out)
        size_mb = plain.stat().st_size / 1e6
        t_gz = best_of(args.repeats, lambda: read_fer2013_csv(source))
        t_plain = best_of(args.repeats, lambda: read_fer2013_csv(plain))
        t_split = best_of(args.repeats, lambda: str_split_parse(plain))
        rows += [
            (f"cold parse, plain CSV ({size_mb:.0f} MB), str.split baseline", f"{t_split:.2f} s", ""),
            ("cold parse, plain CSV, ferlight", f"{t_plain:.2f} s", f"{t_split / t_plain:.1f}x faster"),
            (f"cold parse, {source.name} (gzip), ferlight", f"{t_gz:.2f} s", f"{t_split / t_gz:.1f}x faster"),
        ]
        cache = Path(tmp) / "cache"
        t_first = best_of(1, lambda: load_fer2013(source, cache_dir=cache))
        t_warm = min(warm_load_in_a_fresh_process(source, cache) for _ in range(args.repeats))
        rows += [
            ("load_fer2013, empty cache (parse + write cache)", f"{t_first:.2f} s", ""),
            ("load_fer2013, warm cache, in a fresh process", f"{t_warm:.2f} s", ""),
        ]

        dm = FER2013DataModule(str(source), augment="strong", batch_size=BATCH, cache_dir=str(cache))
        dm.setup("fit")
        dm.trainer = SimpleNamespace(training=True)  # on_after_batch_transfer augments as in training
        ours_loader = dm.train_dataloader()
        epoch_batches = len(ours_loader)
        ours = max(images_per_second(ours_loader, epoch_batches, lambda b: dm.on_after_batch_transfer(b, 0)) for _ in range(args.repeats))
        plain_dm = FER2013DataModule(str(source), augment="none", batch_size=BATCH, cache_dir=str(cache))
        plain_dm.trainer = dm.trainer
        no_augment = max(
            images_per_second(plain_dm.train_dataloader(), epoch_batches, lambda b: plain_dm.on_after_batch_transfer(b, 0))
            for _ in range(args.repeats)
        )
        images, labels = dm.split_arrays("train")
        baseline_loader = DataLoader(PilStyleDataset(images, labels), batch_size=BATCH, shuffle=True)
        baseline = max(images_per_second(baseline_loader, args.baseline_batches) for _ in range(args.repeats))
        rows += [
            ("train loader + strong augmentation, per-sample PIL baseline", f"{baseline:,.0f} img/s", ""),
            ("train loader + strong augmentation, ferlight (CPU, whole batches)", f"{ours:,.0f} img/s", f"{ours / baseline:.1f}x faster"),
            ("train loader, no augmentation (indexing + normalise), ferlight", f"{no_augment:,.0f} img/s", ""),
        ]

    load = os.getloadavg()
    print(f"Command: `python {' '.join(sys.argv)}` (repeats={args.repeats}, batch {BATCH}, torch threads 1)")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
          f"numpy {np.__version__}; load average at the end {load[0]:.1f}")
    print()
    print("| measurement | result | vs baseline |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
