"""Fixtures of the study tests: trials that train nothing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ferlight import tracking
from ferlight.training.run import FitResult


class FakeFit:
    """Stands in for ``run_fit`` in the objective, at once: a trial's run is made in MLflow (its tags,
    its batch size, optimizer and lr as params) and scores ``batch_size / 1000 + lr``. ``raises`` maps
    an lr to what its trial raises once its run exists; ``configs`` are the configs trained."""

    def __init__(self) -> None:
        self.raises: dict[float, BaseException] = {}
        self.configs = []

    def __call__(self, cfg, callbacks=(), tags=None):
        self.configs.append(cfg)
        client = tracking.client(cfg.tracking_uri)
        run_id = tracking.create_run(client, cfg.experiment, cfg.resolved_run_name, tags or {})
        for callback in callbacks:  # the pruning callback learns the run as it would from the Trainer
            callback.setup(SimpleNamespace(logger=SimpleNamespace(run_id=run_id), is_global_zero=True), None, "fit")
        tracking.log_params(client, run_id, {"batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "lr": cfg.lr})
        if cfg.lr in self.raises:
            raise self.raises[cfg.lr]
        tracking.set_status(client, run_id, "FINISHED")
        return FitResult(run_id, None, {"val/best_acc": cfg.batch_size / 1000 + cfg.lr})


@pytest.fixture
def fake_fit(monkeypatch):
    """Trials that train nothing (:class:`FakeFit`), for the study's bookkeeping in a second."""
    fake = FakeFit()
    monkeypatch.setattr("ferlight.study.objective.run_fit", fake)
    return fake
