"""bench/paper_grid.py at CPU scale: every point runs once, in parallel workers, and lands in the results table;
running the command again resumes the study instead of training anything twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_small_grid_writes_a_row_per_point_and_resumes(tmp_path, tiny_csv):
    out = tmp_path / "paper_grid.md"

    def grid():
        result = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "paper_grid.py"), "--data", str(tiny_csv), "--epochs", "1",
             "--archs", "vgg11", "--accelerator", "cpu", "--workers", "2", "--precision", "32-true",
             "--output", str(out)],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={"FERLIGHT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return out.read_text()

    table = grid()
    assert "--epochs 1 --precision 32-true --archs vgg11 --workers 2`" in table  # the command that remakes this table
    rows = [line for line in table.splitlines() if line.startswith("| vgg11")]
    settings = [tuple(cell.strip() for cell in row.split("|")[2:5]) for row in rows]
    assert settings == [("adam", "32", "none"), ("adam", "64", "none"), ("adam", "128", "none"),
                        ("adam", "64", "every"), ("adam", "64", "alternate")]  # the file's order
    paper = {row.split("|")[4].strip(): row.split("|")[5].strip() for row in rows if "| 64 |" in row}
    assert paper == {"none": "58.9", "every": "38.0", "alternate": "58.7"}
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("paper-grid").experiment_id])
    children = {r.info.run_id for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(children) == 5 and {row.split("|")[9].strip(" `") for row in rows} == children
    assert all(r.info.status == "FINISHED" for r in runs)
    assert grid() == table  # the study is complete: nothing trains again
