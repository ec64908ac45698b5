"""``--max-time``: the learning-rate schedule follows the share of the budget spent and ends,
annealed, within the budget; ``epochs`` is an upper bound; the epochs run are logged."""

from __future__ import annotations

import mlflow
import pytest
from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.callbacks import timer as timer_module

from ferlight.training import budget as budget_module
from ferlight.training.config import FitConfig
from ferlight.training.run import run_fit

class RecordFit(Callback):
    """The Timer's training seconds and the learning rate when fitting ends."""

    def on_train_end(self, trainer, pl_module):
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        self.seconds = timer.time_elapsed("train")
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def budget_config(tmp_path, tiny_csv, **kwargs) -> FitConfig:
    return FitConfig(
        data=str(tiny_csv), arch="fervgg_small", model_options={"width": 4}, batch_size=16, epochs=10_000,
        optimizer="sgd", lr=0.05, precision="32-true", accelerator="cpu",
        devices=1, progress_bar=False, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        checkpoint_dir=str(tmp_path / "checkpoints"), cache_dir=str(tmp_path / "cache"), **kwargs,
    )


class FakeClock(Callback):
    """The clock that Lightning's Timer and the budget read, advanced by the work done rather than by
    the wall: ``step_s`` a training step, ``val_batch_s`` a validation batch, both ``busier`` times as
    long from training step ``busier_from`` on (a CPU that other work starts to share). Placed first, it
    advances inside each step and batch, between the hooks that read the clock."""

    def __init__(self, step_s=0.1, val_batch_s=0.2, busier=1.0, busier_from=0):
        self.now, self.steps = 1000.0, 0
        self.step_s, self.val_batch_s, self.busier, self.busier_from = step_s, val_batch_s, busier, busier_from

    def monotonic(self) -> float:
        return self.now

    def load(self) -> float:
        return self.busier if self.steps >= self.busier_from else 1.0

    def on_before_backward(self, trainer, pl_module, loss):
        self.now += self.step_s * self.load()
        self.steps += 1

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.now += self.val_batch_s * self.load()


def fit_on(clock: FakeClock, monkeypatch, tmp_path, tiny_csv, budget_s: int, **kwargs):
    """A budgeted fit whose every time reading comes from ``clock``."""
    monkeypatch.setattr(timer_module, "time", clock)
    monkeypatch.setattr(budget_module, "time", clock)
    record = RecordFit()
    cfg = budget_config(tmp_path, tiny_csv, max_time="00:00:00:%02d" % budget_s, **kwargs)
    return run_fit(cfg, callbacks=[clock, record]), record


@pytest.mark.parametrize(
    "scheduler,final_lr", [("onecycle", 0.05 / 25 / 1e4), pytest.param("cosine", 0.0, marks=pytest.mark.slow)]
)
def test_a_budget_ends_with_the_schedule_annealed(tmp_path, tiny_csv, scheduler, final_lr, monkeypatch):
    result, record = fit_on(FakeClock(), monkeypatch, tmp_path, tiny_csv, 20, scheduler=scheduler)
    assert record.seconds <= 20  # the last validation included
    assert record.lr == pytest.approx(final_lr, abs=1e-9)  # the schedule's last value, not mid-curve
    metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.metrics
    assert metrics["lr_schedule_complete"] == 1.0 and metrics["budget/stopped_by_budget"] == 1.0
    assert 0 < metrics["epochs_run"] < 10_000 and metrics["lr_final"] == pytest.approx(final_lr, abs=1e-9)
    assert "val/best_acc" in result.metrics  # validated and tested after the stop


@pytest.mark.parametrize("busier_from", [96, 108, pytest.param(114, marks=pytest.mark.slow),
                                         pytest.param(126, marks=pytest.mark.slow)])
def test_a_budget_holds_when_the_cpu_gets_busier_near_its_end(tmp_path, tiny_csv, busier_from, monkeypatch):
    """Steps and validations three times slower from some step of the last epochs on (20 s, about 12 epochs
    of 10 steps): the reserve for the last validation grows with the steps' slowdown."""
    clock = FakeClock(busier=3.0, busier_from=busier_from)
    result, record = fit_on(clock, monkeypatch, tmp_path, tiny_csv, 20, scheduler="onecycle")
    assert clock.steps > busier_from and record.seconds <= 20
    metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.metrics
    assert metrics["lr_schedule_complete"] == 1.0


@pytest.mark.slow
def test_epochs_still_bound_a_generous_budget(tmp_path, tiny_csv):
    cfg = budget_config(tmp_path, tiny_csv, scheduler="onecycle")
    cfg.epochs, cfg.max_time, cfg.limit_train_batches = 2, "00:00:10:00", 2
    result = run_fit(cfg)
    metrics = mlflow.MlflowClient(cfg.tracking_uri).get_run(result.run_id).data.metrics
    assert metrics["epochs_run"] == 2.0 and metrics["budget/stopped_by_budget"] == 0.0
    assert metrics["lr_schedule_complete"] == 1.0
