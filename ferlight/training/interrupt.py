"""Ctrl-C during training: stop between batches, so that no write to the tracking store is cut short."""

from __future__ import annotations

import signal
import threading

from lightning.pytorch.callbacks import Callback


class CtrlC(Callback):
    """Ctrl-C stops training at the next batch boundary and is remembered.

    Python raises KeyboardInterrupt wherever the main thread happens to be, which can be inside an
    MLflow write to SQLite: the interrupted transaction then holds the database lock, and the
    writes that end the run fail with "database is locked". So the first Ctrl-C only sets a flag,
    and the interrupt is raised between batches, where Lightning shuts down gracefully (and ends
    the run as KILLED). A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._requested = False
        self._previous = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)

    def _request(self, signum, frame) -> None:
        self._requested = True
        signal.signal(signal.SIGINT, self._previous)

    def _raise_if_requested(self, *args) -> None:
        if self._requested:
            self._requested = False
            raise KeyboardInterrupt

    on_train_batch_start = on_train_batch_end = _raise_if_requested
    on_validation_batch_start = on_validation_batch_end = _raise_if_requested

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.interrupted = isinstance(exception, KeyboardInterrupt)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGINT) == self._request:
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None
