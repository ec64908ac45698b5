"""bench/sweep_photo_detection.py: a setting reaches the still search and is undone after it; bad
settings and missing sets exit with status 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import sweep_photo_detection as sweep  # noqa: E402

from ferlight.inference import detection, mtcnn  # noqa: E402
from ferlight.testing.photo_set import make_photo_set  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    out = tmp_path_factory.mktemp("photos")
    make_photo_set(out, "tune", None, n_photos=10)  # the astronaut only
    return out


def test_a_setting_reaches_the_search_and_is_put_back(photos):
    before = (mtcnn.STILL_PNET, mtcnn.RESCUE, detection.STILL_FACE_PROBABILITY)
    default = sweep.sweep_set(photos / "tune", {})
    assert default["faces"] > 0 and default["found"] >= default["faces"] - 1
    blind = sweep.sweep_set(photos / "tune", sweep.parse_setting("still_pnet=0.9999; rescue=(0.9999, 0.9999)"))
    assert blind["faces"] == default["faces"] and blind["found"] < default["found"]
    doubted = sweep.sweep_set(photos / "tune", sweep.parse_setting("still_face_probability=0.9999; verifier_probability=0.9999"))
    assert doubted["found"] < default["found"]
    assert (mtcnn.STILL_PNET, mtcnn.RESCUE, detection.STILL_FACE_PROBABILITY) == before


def test_bad_settings_and_missing_sets_exit_2(photos, capsys):
    assert sweep.main(["--photos", str(photos), "--try", "bogus=1"]) == 2
    assert "unknown setting 'bogus'" in capsys.readouterr().err
    assert sweep.main(["--photos", str(photos), "--sets", "busy"]) == 2
    assert f"no photo set in {photos / 'busy'}" in capsys.readouterr().err
