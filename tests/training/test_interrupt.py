"""Ctrl-C during training waits for the batch boundary: work in progress (such as a write to the
tracking store) is never cut in half, and the interrupt is remembered."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from ferlight.training import EmotionClassifier
from ferlight.training.interrupt import CtrlC

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class CtrlCMidWrite(Callback):
    """At the end of batch 1, press Ctrl-C in the middle of some "write", and note how far it got."""

    def __init__(self) -> None:
        self.write_finished = False
        self.batches_started = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches_started += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 1:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(100_000))  # the signal is delivered here, between bytecodes
            self.write_finished = True


@pytest.fixture
def restore_sigint():
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)  # Lightning ignores Ctrl-C while it shuts down


def test_ctrl_c_stops_at_the_next_batch_boundary(restore_sigint):
    x, y = torch.randn(64, 1, 48, 48), torch.arange(64) % 7
    ctrl_c, probe = CtrlC(), CtrlCMidWrite()
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[probe, ctrl_c])
    module = EmotionClassifier(arch="fervgg_small", class_names=NAMES, model_options={"width": 4})
    with pytest.raises(SystemExit):  # Lightning's graceful shutdown after a KeyboardInterrupt
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    assert probe.write_finished  # the hook that was running when Ctrl-C came finished its work
    assert probe.batches_started == 2  # and no batch started after it
    assert ctrl_c.interrupted
