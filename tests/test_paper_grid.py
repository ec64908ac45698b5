"""bench/paper_grid.py at CPU scale: every point runs once and lands in the results table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tiny_data import write_tiny_fer2013

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_small_grid_writes_a_row_per_point(tmp_path):
    csv = write_tiny_fer2013(tmp_path / "fer2013.csv")
    out = tmp_path / "paper_grid.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "paper_grid.py"), "--data", str(csv), "--epochs", "1",
         "--archs", "vgg11", "--accelerator", "cpu", "--output", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={"FERLIGHT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| vgg11")]
    settings = {tuple(cell.strip() for cell in row.split("|")[2:5]) for row in rows}
    assert settings == {("adam", "32", "none"), ("adam", "64", "none"), ("adam", "128", "none"),
                        ("adam", "64", "every"), ("adam", "64", "alternate")}
    paper = {row.split("|")[4].strip(): row.split("|")[5].strip() for row in rows if "| 64 |" in row}
    assert paper == {"none": "58.9", "every": "38.0", "alternate": "58.7"}
    assert (tmp_path / "mlflow.db").is_file()
