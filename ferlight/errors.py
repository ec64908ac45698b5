"""Errors a user can fix, and the one place that turns them into a clean exit.

Library code raises a subclass of :class:`FerlightError` with a message that names what is wrong
and where (file, line, option). Command lines wrap their ``main`` in :func:`exit_on_error`, which
prints that message as one line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., object])

EXIT_BAD_INPUT = 2


class FerlightError(Exception):
    """Bad input or configuration that the user can fix."""


class DataError(FerlightError):
    """A data file or folder is missing, malformed or inconsistent."""


class ConfigError(FerlightError):
    """An option, configuration file or architecture name is invalid."""


class CheckpointError(FerlightError):
    """A checkpoint is missing or was not written by ferlight."""


class PeerLost(FerlightError):
    """Another process of a multi-process (DDP) run died: not bad input, so exit status 1."""

    exit_status = 1


def first_line(err: BaseException, lines: int = 1) -> str:
    """The first non-blank line(s) of an exception's message, joined: the part a user needs from
    libraries (SQLAlchemy, OpenCV, jsonargparse) that add a traceback-like tail."""
    text = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(text[:lines])


def exit_on_error(main: F) -> F:
    """Run ``main``; on a :class:`FerlightError` print one line and exit with status 2 (or the
    error's own ``exit_status``)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except FerlightError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(getattr(err, "exit_status", EXIT_BAD_INPUT)) from None

    return wrapper  # type: ignore[return-value]
