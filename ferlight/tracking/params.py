"""What a run records beside its options: nested options as flat params, and the code's commit.

Both are kept by hand on purpose. Lightning's ``MLFlowLogger.log_hyperparams`` flattens nested
dicts itself, but joins names with ``/`` (``model/width``), while the runs' params are
``model.<option>``. MLflow tags a run ``mlflow.source.git.commit`` by itself, but only when the
process's entry script lies in a git checkout (not under pytest, a notebook or a user's script
elsewhere), and then names that script's repository, not ferlight's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Mapping


def flatten(params: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested dicts as MLflow params: ``{"model": {"width": 32}}`` -> ``{"model.width": 32}``."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def git_commit() -> str:
    """The commit of the ferlight checkout, or ``unknown`` for an installed copy."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
