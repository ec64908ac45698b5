"""datamodule: FER2013DataModule's batches, order and class statistics, where the faces live, its
options, and sharding under DDP."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from ferlight.data import CLASS_NAMES, FER2013DataModule, FERData, write_fer2013_csv
from ferlight.data.preprocess import eval_transform, normalize
from ferlight.errors import ConfigError


def _datamodule(path, tmp_path, **options) -> FER2013DataModule:
    return FER2013DataModule(str(path), cache_dir=str(tmp_path / "cache"), **options)


def _trainer(training: bool, device: str = "cpu") -> SimpleNamespace:
    """What the DataModule reads of its Trainer."""
    return SimpleNamespace(training=training, world_size=1, strategy=SimpleNamespace(root_device=torch.device(device)))


def test_datamodule_batches(tmp_path, csv_path, data):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=10, augment="strong", crop_size=44)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (10, 48, 48)
    assert labels.dtype == torch.int64 and labels.shape == (10,)
    dm.trainer = _trainer(training=True)
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.shape == (10, 1, 44, 44) and x.dtype == torch.float32 and y is labels
    assert not torch.allclose(x, eval_transform(images, 44))  # training batches are augmented ...
    dm.trainer = _trainer(training=False)
    val_images, val_labels = next(iter(dm.val_dataloader()))
    x, _ = dm.on_after_batch_transfer((val_images, val_labels), 0)
    assert torch.equal(x, normalize(val_images))  # ... evaluation batches are only normalised


def test_datamodule_order_and_class_statistics(tmp_path, csv_path, data):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8)
    val_images, val_labels = dm.split_arrays("val")  # sets up on demand
    public = data.usage == 1
    assert np.array_equal(val_images, data.images[public]) and np.array_equal(val_labels, data.labels[public])
    assert torch.equal(torch.cat([y for _, y in dm.val_dataloader()]), torch.from_numpy(val_labels))  # in order
    torch.manual_seed(0)
    epochs = [torch.cat([y for _, y in dm.train_dataloader()]) for _ in range(2)]
    train_labels = torch.from_numpy(dm.split_arrays("train")[1])
    assert all(torch.equal(e.sort().values, train_labels.sort().values) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0], train_labels)  # shuffled
    assert np.array_equal(dm.class_counts(), np.full(7, 4))
    two_angry_faces_fewer = np.delete(np.arange(len(data)), np.flatnonzero((data.usage == 0) & (data.labels == 0))[:2])
    write_fer2013_csv(data.subset(two_angry_faces_fewer), tmp_path / "unbalanced.csv")
    dm = _datamodule(tmp_path / "unbalanced.csv", tmp_path, protocol="standard")
    assert dm.class_counts().tolist() == [2, 4, 4, 4, 4, 4, 4]
    weights = dm.class_weights()
    assert weights.dtype == torch.float32
    assert torch.allclose(weights, torch.tensor([7 / 4, 7 / 8, 7 / 8, 7 / 8, 7 / 8, 7 / 8, 7 / 8]))  # 1/count, mean 1


def test_faces_live_on_the_training_device_unless_workers_load_them(tmp_path, csv_path):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8)
    dm.trainer = _trainer(training=True, device="meta")  # stands in for a GPU: tensors that are not on the host
    images, labels = next(iter(dm.train_dataloader()))
    assert images.device.type == labels.device.type == "meta" and images.shape == (8, 48, 48)
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=8, num_workers=1)
    dm.trainer = _trainer(training=True, device="meta")
    assert dm.train_dataloader().dataset.images.device.type == "cpu"


def test_datamodule_drops_a_last_batch_of_one(tmp_path, csv_path):
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=9)  # 28 training faces = 3 x 9 + 1
    assert [len(y) for _, y in dm.train_dataloader()] == [9, 9, 9]
    dm = _datamodule(csv_path, tmp_path, protocol="standard", batch_size=10)
    assert sorted(len(y) for _, y in dm.train_dataloader()) == [8, 10, 10]


def test_datamodule_options(tmp_path, csv_path):
    assert _datamodule(csv_path, tmp_path, labels="ferplus").num_classes == 8
    assert _datamodule(csv_path, tmp_path).class_names == CLASS_NAMES
    for options, message in [
        ({"protocol": "x"}, "unknown protocol"),
        ({"labels": "x"}, "unknown labels"),
        ({"augment": "x"}, "unknown augmentation"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _datamodule(csv_path, tmp_path, **options)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        _datamodule(csv_path, tmp_path).split_arrays("dev")


# --- sharding under DDP ----------------------------------------------------------------------------


def _indexed_data() -> FERData:
    """40 Training faces whose every pixel is their row number (so a batch tells which rows it holds),
    then one PublicTest and one PrivateTest face."""
    images = np.repeat(np.arange(42, dtype=np.uint8), 48 * 48).reshape(42, 48, 48)
    usage = np.array([0] * 40 + [1, 2], np.int8)
    return FERData(images, (np.arange(42) % 7).astype(np.int64), usage)


def test_lightning_swaps_in_a_distributed_sampler_that_shards(tmp_path):
    from lightning.pytorch.utilities.data import _update_dataloader

    write_fer2013_csv(_indexed_data(), tmp_path / "indexed.csv")
    loader = _datamodule(tmp_path / "indexed.csv", tmp_path, protocol="standard", batch_size=6).train_dataloader()
    seen = []
    for rank in range(2):  # what Lightning does on each rank under DDP
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sharded = _update_dataloader(loader, sampler)
        assert sharded.collate_fn is loader.collate_fn and sharded.batch_size == 6
        seen.append([int(images[i, 0, 0]) for images, _ in sharded for i in range(len(images))])
    assert len(seen[0]) == len(seen[1]) == 20
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(40))


@pytest.mark.slow
def test_ddp_ranks_see_disjoint_shards(tmp_path):
    """A real 2-process gloo run: each rank writes the rows it trained on."""
    write_fer2013_csv(_indexed_data(), tmp_path / "indexed.csv")
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [set(map(int, (tmp_path / f"rank{r}.txt").read_text().split())) for r in range(2)]
    assert len(seen[0]) == len(seen[1]) == 20
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(40))


DDP_SCRIPT = """
import sys
from pathlib import Path
import lightning as L
import torch
from ferlight.data import FER2013DataModule
from ferlight.data.preprocess import MEAN, STD

out = Path(sys.argv[1])

class Record(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.rows = []
    def training_step(self, batch, _):
        x, _ = batch
        self.rows += ((x[:, 0, 0, 0] * STD + MEAN) * 255).round().int().tolist()
        return (self.w * x.mean()).sum()
    def on_train_end(self):
        (out / f"rank{self.global_rank}.txt").write_text(" ".join(map(str, self.rows)))
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

if __name__ == "__main__":
    dm = FER2013DataModule(str(out / "indexed.csv"), protocol="standard", batch_size=5, cache_dir=str(out / "cache"))
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Record(), datamodule=dm)
    torch.distributed.destroy_process_group()  # gloo threads alive at exit can abort the process
"""
