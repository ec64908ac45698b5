"""Fixtures that several test modules share."""

import pytest

from fake_checkpoint import save_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A random-weight fervgg_small checkpoint (tests that need their own define ``checkpoint`` locally)."""
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.ckpt")
