"""Time budgets that mean what they say: ``--max-time`` ends training with the schedule complete.

Lightning's ``Trainer(max_time=...)`` stops training when the time is up, wherever the learning
rate is. :class:`TimeBudget` makes the schedule follow the budget instead: the step-indexed
schedulers (one-cycle, cosine) are advanced to ``max(steps done / steps planned, time spent /
time for training)`` of their length after every step, so on a slow machine the schedule runs
ahead of the steps and reaches its end when the time for training is spent; on a fast one the
steps lead and ``epochs`` ends the run as before. Training then stops (mid-epoch if need be) and
the last validation runs. The time for training is ``max_time`` less a reserve for that last
validation and checkpoint: 1.5 times the pause between two training steps (validation,
checkpointing), the latest one scaled by how much slower training steps have become since it was
measured (a CPU that gets busier during the run makes the last validation slower too), and never
less than the longest one; before one is measured, the larger of ``RESERVE_BEFORE_MEASURED`` of the
budget and 1.5 times the sanity check's time scaled to the whole validation set.

Time is read from Lightning's own ``Timer`` (which ``max_time`` installs and which carries the
elapsed time across ``--resume``); the schedulers are torch's own, stepped through their public
``step()``. What is written here by hand: the progress rule, the catch-up loop and the reserve.
"""

from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.lr_scheduler import ReduceLROnPlateau

RESERVE_FACTOR = 1.5
RESERVE_BEFORE_MEASURED = 0.03  # of the budget, until a validation pause has been measured
RESERVE_MIN_S = 1.0
STEP_SMOOTHING = 0.3  # weight of the newest step in the running step time (one slow step is noise)


class TimeBudget(Callback):
    """Drive step-indexed LR schedules by the share of ``max_time`` spent; stop when they end."""

    def __init__(self) -> None:
        self.timer: Timer | None = None
        self.schedulers: list = []
        self.planned_steps = 0
        self.longest_pause = 0.0
        self.latest_pause = 0.0  # the latest pause between epochs (validation, checkpoint)
        self.step_time_at_pause = 0.0  # the running step time when latest_pause was measured
        self.step_time = 0.0  # seconds a training step takes, smoothed
        self.validation_estimate = 0.0  # seconds, from the sanity check
        self._sanity_start: float | None = None
        self._last_batch_end: float | None = None
        self._batch_start = 0.0
        self.last_step = 0.0  # seconds the latest training step took
        self.stopped_at: float | None = None  # elapsed seconds when the budget stopped training
        self.schedule_complete = False

    @property
    def active(self) -> bool:
        return self.timer is not None

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._sanity_start = time.monotonic()

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        seconds = time.monotonic() - self._sanity_start
        checked, full = sum(trainer.num_sanity_val_batches), sum(trainer.num_val_batches)
        self.validation_estimate = seconds * max(1.0, full / max(checked, 1))

    def on_train_start(self, trainer, pl_module) -> None:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return
        self.timer = timer
        self.planned_steps = int(trainer.estimated_stepping_batches)
        self.schedulers = [
            config.scheduler for config in trainer.lr_scheduler_configs
            if config.interval == "step" and not isinstance(config.scheduler, ReduceLROnPlateau)
        ]
        self._last_batch_end = None

    @property
    def duration(self) -> float:
        return self.timer._duration  # what Timer was given (max_time), in seconds

    def reserve(self) -> float:
        """Seconds kept for the last validation and checkpoint after training stops."""
        if self.latest_pause > 0:
            slowdown = max(1.0, self.step_time / self.step_time_at_pause) if self.step_time_at_pause > 0 else 1.0
            return max(RESERVE_MIN_S, RESERVE_FACTOR * max(self.longest_pause, self.latest_pause * slowdown))
        first = max(RESERVE_BEFORE_MEASURED * self.duration, RESERVE_FACTOR * self.validation_estimate)
        return max(RESERVE_MIN_S, first)

    def progress(self, steps_done: int, epoch_ends: bool = False) -> float:
        """The share of the schedule due: steps done or time for training spent, whichever leads.
        Time counts what comes before the next step ends: that step, and the epoch's validation
        when the epoch ends now (so that no step starts that would end past the time)."""
        reserve = self.reserve()
        for_training = max(self.duration - reserve, 1e-9)
        by_steps = steps_done / max(self.planned_steps, 1)
        ahead = self.last_step + (reserve if epoch_ends else 0.0)
        return min(1.0, max(by_steps, (self.timer.time_elapsed() + ahead) / for_training))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.active:
            return
        self._batch_start = self.timer.time_elapsed()
        if self._last_batch_end is not None:
            pause = self._batch_start - self._last_batch_end
            self.longest_pause = max(self.longest_pause, pause)
            if batch_idx == 0:  # the pause that held the epoch's validation and checkpoint
                self.latest_pause, self.step_time_at_pause = pause, self.step_time

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.active:
            return
        self.last_step = self.timer.time_elapsed() - self._batch_start
        self.step_time = self.last_step if self.step_time == 0 else (
            (1 - STEP_SMOOTHING) * self.step_time + STEP_SMOOTHING * self.last_step)
        epoch_ends = batch_idx + 1 >= trainer.num_training_batches
        progress = trainer.strategy.broadcast(self.progress(trainer.global_step, epoch_ends))  # one decision for all ranks
        last = self.planned_steps - 1  # the schedule's final position: lr at its final value
        target = min(last, math.ceil(progress * last - 1e-9))
        for scheduler in self.schedulers:
            while scheduler.last_epoch < target:
                scheduler.step()
        if progress >= 1.0 and trainer.global_step < self.planned_steps and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped_at = self.timer.time_elapsed()
            self.schedule_complete = all(s.last_epoch >= last for s in self.schedulers)
            done = trainer.global_step / max(trainer.num_training_batches, 1)
            rank_zero_info(
                f"time budget: learning-rate schedule complete at {_clock(self.stopped_at)} of "
                f"{_clock(self.duration)} after {done:.2f} epochs; stopping for the last validation"
            )
        self._last_batch_end = self.timer.time_elapsed()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
