"""bench/blazeface.py's decoding (the model files are not in the repo: anchors, NMS and tiling only)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from bench_blazeface import tiles  # noqa: E402
from blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, anchors, weighted_nms  # noqa: E402

from ferlight.errors import ConfigError  # noqa: E402


def test_anchors_match_the_models_outputs():
    """Short range: 16 x 16 cells x 2 anchors, then 8 x 8 cells x 6 (three layers of stride 16);
    full range: 48 x 48 cells x 1. Each anchor sits at its cell's centre."""
    short, full = anchors(SHORT_RANGE), anchors(FULL_RANGE)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    assert np.allclose(short[:2], [0.5 / 16, 0.5 / 16]) and np.allclose(short[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(short[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(short[-1], [7.5 / 8, 7.5 / 8])
    assert np.allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_weighted_nms_averages_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 10, 10], [50, 50, 10, 10]], float)
    merged, scores = weighted_nms(boxes, np.array([0.6, 0.9, 0.7]))
    assert scores.tolist() == [0.9, 0.7]
    assert np.allclose(merged[0], [(2 * 0.9) / 1.5, 0, 10, 10]) and np.allclose(merged[1], [50, 50, 10, 10])


def test_tiles_overlap_by_half_and_reach_the_end():
    assert tiles(320, 640).tolist() == [0, 160, 320]
    assert tiles(320, 480).tolist() == [0, 160]
    assert tiles(320, 300).tolist() == [0]


def test_missing_model_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="BlazeFace model not found"):
        BlazeFace(SHORT_RANGE, tmp_path)
