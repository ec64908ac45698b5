"""Helpers for tests that start ferlight's command lines as child processes."""

import signal


def default_sigint() -> None:
    """Popen's preexec_fn: let the child take Ctrl-C even when pytest runs as a background job
    (a non-interactive shell starts those with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
