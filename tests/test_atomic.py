"""atomic: an output is either whole at its path or absent, never half written."""

from __future__ import annotations

import pytest

from ferlight.atomic import atomic_output


def test_atomic_output_leaves_nothing_half_written(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "out.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "faces") as tmp:
            (tmp / "train").mkdir(parents=True)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(tmp_path / "out.csv") as tmp:
        tmp.write_text("whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"] and (tmp_path / "out.csv").read_text() == "whole"
