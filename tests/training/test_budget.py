"""``--max-time``: the learning-rate schedule follows the share of the budget spent and ends,
annealed, within the budget; ``epochs`` is an upper bound; the epochs run are logged."""

from __future__ import annotations

import mlflow
import pytest
from lightning.pytorch.callbacks import Callback, Timer

from ferlight.training.config import FitConfig
from ferlight.training.run import run_fit

BUDGET_S = 6


class RecordFit(Callback):
    """The Timer's training seconds and the learning rate when fitting ends."""

    def on_train_end(self, trainer, pl_module):
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        self.seconds = timer.time_elapsed("train")
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def budget_config(tmp_path, tiny_csv, **kwargs) -> FitConfig:
    return FitConfig(
        data=str(tiny_csv), arch="fervgg_small", model_options={"width": 4}, batch_size=16, epochs=10_000,
        optimizer="sgd", lr=0.05, max_time="00:00:00:%02d" % BUDGET_S, precision="32-true", accelerator="cpu",
        devices=1, progress_bar=False, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        checkpoint_dir=str(tmp_path / "checkpoints"), cache_dir=str(tmp_path / "cache"), **kwargs,
    )


@pytest.mark.parametrize(
    "scheduler,final_lr", [("onecycle", 0.05 / 25 / 1e4), pytest.param("cosine", 0.0, marks=pytest.mark.slow)]
)
def test_a_budget_ends_with_the_schedule_annealed(tmp_path, tiny_csv, scheduler, final_lr):
    record = RecordFit()
    result = run_fit(budget_config(tmp_path, tiny_csv, scheduler=scheduler), callbacks=[record])
    assert record.seconds <= BUDGET_S  # the last validation included
    assert record.lr == pytest.approx(final_lr, abs=1e-9)  # the schedule's last value, not mid-curve
    metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.metrics
    assert metrics["lr_schedule_complete"] == 1.0 and metrics["budget/stopped_by_budget"] == 1.0
    assert 0 < metrics["epochs_run"] < 10_000 and metrics["lr_final"] == pytest.approx(final_lr, abs=1e-9)
    assert "val/best_acc" in result.metrics  # validated and tested after the stop


@pytest.mark.slow
def test_epochs_still_bound_a_generous_budget(tmp_path, tiny_csv):
    cfg = budget_config(tmp_path, tiny_csv, scheduler="onecycle")
    cfg.epochs, cfg.max_time, cfg.limit_train_batches = 2, "00:00:10:00", 2
    result = run_fit(cfg)
    metrics = mlflow.MlflowClient(cfg.tracking_uri).get_run(result.run_id).data.metrics
    assert metrics["epochs_run"] == 2.0 and metrics["budget/stopped_by_budget"] == 0.0
    assert metrics["lr_schedule_complete"] == 1.0
