"""The LightningDataModule that every ferlight training, sweep and benchmark uses.

Faces stay in memory as uint8 tensors and a batch is one indexing operation (the dataset's
``__getitems__``), so loading costs microseconds and needs no worker processes. Without workers the
tensors live on the training device (the whole FER2013 is 83 MB): on a GPU no batch crosses the
bus, only its indices. Normalisation and augmentation run on whole batches on the training device
(``on_after_batch_transfer``): training batches go through :class:`BatchAugment`; every other batch
is only normalised and stays 48 x 48, because the model's evaluation crop and test-time views
(centre crop, flip, ten crops) are taken by ``EmotionClassifier`` with
:func:`ferlight.data.preprocess.tta_views`.

Under DDP, Lightning swaps the training loader's sampler for a ``DistributedSampler`` (it rebuilds
the ``DataLoader`` with the same arguments), so each rank reads its own shard. Validation and test
loaders get an ``UnrepeatedDistributedSampler`` instead, which pads nothing: metrics then count every
face exactly once (per-class supports add up to the split's size).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from ferlight.data.augment import BatchAugment
from ferlight.data.fer_data import CLASS_NAMES, FERPLUS_CLASS_NAMES
from ferlight.data.load import load_fer2013
from ferlight.data.preprocess import IMAGE_SIZE, normalize
from ferlight.data.protocols import SPLITS, split_protocol
from ferlight.errors import ConfigError, DataError
from ferlight.options import LABEL_SETS, PROTOCOLS, check_choice


class FaceTensors(Dataset):
    """Faces and labels as tensors; ``__getitems__`` returns a whole batch ``(uint8 N x 48 x 48, int64 N)``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device | str = "cpu") -> None:
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(indices)
        if self.images.is_cuda:  # pinned and non-blocking: the copy does not wait for the GPU's queue
            rows = rows.pin_memory()
        rows = rows.to(self.images.device, non_blocking=True)
        return self.images[rows], self.labels[rows]


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The DataLoader's collate_fn: ``__getitems__`` already returns the batch."""
    return batch


class FER2013DataModule(L.LightningDataModule):
    """FER2013 (or FER+) under the ``paper`` or ``standard`` protocol, see :mod:`ferlight.data.protocols`.

    The last partial training batch is kept, unless it would hold a single face (BatchNorm cannot
    train on one); validation and test batches are not shuffled.
    """

    def __init__(
        self,
        data: str | None = None,
        protocol: str = "paper",
        labels: str = "fer2013",
        ferplus: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        augment: str = "none",
        crop_size: int = IMAGE_SIZE,
        split_seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        check_choice("protocol", protocol, PROTOCOLS)
        check_choice("labels", labels, LABEL_SETS)
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.save_hyperparameters(logger=False)  # ferlight.training.run logs the whole config itself
        self.batch_augment = BatchAugment(augment, crop_size)
        self.class_names = FERPLUS_CLASS_NAMES if labels == "ferplus" else CLASS_NAMES
        self.num_classes = len(self.class_names)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def prepare_data(self) -> None:
        """Parse the source once and fill the cache (Lightning runs this on one process per node)."""
        self._load()

    def setup(self, stage: str | None = None) -> None:
        """Load (from the cache) and split; every stage gets all splits, it costs nothing more."""
        if self._arrays:
            return
        data = self._load()
        for split, rows in split_protocol(data, self.hparams.protocol, self.hparams.split_seed).items():
            self._arrays[split] = (data.images[rows], data.labels[rows])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Normalise on the device; augment training batches (evaluation crops are the model's)."""
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            return self.batch_augment(normalize(images)), labels
        return normalize(images), labels

    def split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 images N x 48 x 48, int64 labels) of "train", "val" or "test" (sets up if needed)."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        self.setup()
        return self._arrays[split]

    def class_counts(self) -> np.ndarray:
        """Faces per class in the train split."""
        return np.bincount(self.split_arrays("train")[1], minlength=self.num_classes)

    def class_weights(self) -> torch.Tensor:
        """Inverse-frequency class weights of the train split, scaled to mean 1 (for a weighted loss)."""
        counts = self.class_counts()
        if np.any(counts == 0):
            missing = [name for name, count in zip(self.class_names, counts) if count == 0]
            raise DataError(f"no training faces of class {', '.join(missing)}: inverse-frequency weights are undefined")
        weights = 1.0 / counts
        return torch.tensor(weights / weights.mean(), dtype=torch.float32)

    def _load(self):
        hp = self.hparams
        return load_fer2013(hp.data, labels=hp.labels, ferplus_path=hp.ferplus, cache_dir=hp.cache_dir)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        images, labels = self.split_arrays(split)
        batch_size, workers = self.hparams.batch_size, self.hparams.num_workers
        trainer = self.trainer
        # worker processes cannot share CUDA tensors, so with workers the faces stay on the host
        device = trainer.strategy.root_device if trainer is not None and workers == 0 else "cpu"
        dataset = FaceTensors(images, labels, device)
        sampler = None
        if not shuffle and trainer is not None and trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(dataset, trainer.world_size, trainer.global_rank, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=shuffle and len(labels) % batch_size == 1,
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=keep_batch,
        )
