"""One line an epoch, with its figures, where Lightning's progress bar would not be read.

The bar redraws itself many times a second; written to a file or a CI log, every redraw is a line
(hundreds an epoch, one per validation batch). ``run_fit`` uses this callback instead of the bar
when standard output is not a terminal, or when the bar is turned off.
"""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback

FIGURES = ("train/loss", "train/acc", "val/loss", "val/acc", "val/f1_macro")


class EpochLines(Callback):
    """Print ``epoch 3/30: train/loss 1.234, ..., val/acc 0.512 (41 s)`` after each epoch (rank 0 only)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # after the epoch's validation
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        figures = ", ".join(f"{name} {float(metrics[name]):.4f}" for name in FIGURES if name in metrics)
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {figures} ({time.monotonic() - self.started:.0f} s)",
              flush=True)
