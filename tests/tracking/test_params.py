"""What a run records beside its options: nested options flattened with dots, and the commit of
the ferlight checkout (``unknown`` outside one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ferlight
from ferlight.tracking.params import flatten, git_commit


def test_nested_options_become_dotted_params():
    params = {"lr": 0.1, "model": {"width": 32, "block": {"depth": 2}}, "channels": [1, 2]}
    assert flatten(params) == {"lr": 0.1, "model.width": 32, "model.block.depth": 2, "channels": [1, 2]}


def test_git_commit_is_the_checkouts_head_or_unknown(monkeypatch, tmp_path):
    package = Path(ferlight.__file__).parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
    assert git_commit() == (head.stdout.strip() if head.returncode == 0 else "unknown")
    monkeypatch.setenv("GIT_DIR", str(tmp_path))  # as if ferlight were installed, not checked out
    assert git_commit() == "unknown"
