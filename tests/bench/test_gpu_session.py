"""bench/gpu/session.sh at CPU scale: the one script a GPU session runs trains the strong recipe on
both protocols and the paper's grid side by side, and leaves their results in $OUT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferlight.testing.tiny_data import write_tiny_fer2013

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_session_run_at_cpu_scale(tmp_path):
    csv = write_tiny_fer2013(tmp_path / "fer2013.csv")
    out = tmp_path / "out"
    env = {
        **os.environ, "PYTHON": sys.executable, "OUT": str(out), "DATA": str(csv), "ACCELERATOR": "cpu",
        "STRONG_EPOCHS": "1", "GRID_EPOCHS": "1", "GRID_WORKERS": "1", "GRID_ROWS": "attention-adam-64",
        "GRID_PRECISION": "32-true", "STRONG_PRECISION": "32-true",  # no bf16 training on a CPU in tests
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "FERLIGHT_CACHE": str(tmp_path / "cache"),
    }
    result = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "session.sh"), "run"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["grid-logs", "grid.log", "paper_grid.jsonl", "paper_grid.md", "paper_grid.png",
                                                     "strong_paper.log", "strong_paper_report.txt", "strong_standard.log",
                                                     "strong_standard_report.txt"]
    assert "precision" in (out / "strong_standard_report.txt").read_text()
    strong = [line for line in result.stdout.splitlines() if line.startswith("MLflow run")]
    assert len(strong) == 2 and all("test/acc=" in line for line in strong)
    rows = [line for line in (out / "paper_grid.md").read_text().splitlines() if line.startswith("| attention-adam-64 |")]
    assert len(rows) == 1 and "| 61.4 |" in rows[0]


def test_session_needs_a_known_phase():
    result = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "session.sh"), "train"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr
