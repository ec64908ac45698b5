"""bench/peer_fer.py and its worker, without fer: a fake detector stands in for fer's FER."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ferlight.data.fer_data import CLASS_NAMES
from ferlight.inference.recognizer import Face, FrameResult

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import peer_fer  # noqa: E402
import peer_fer_worker as worker  # noqa: E402


class FakeFer:
    """fer's detect_emotions: a numpy box, scores rounded to 2 decimals; a face in frame 1 only."""

    def detect_emotions(self, frame):
        assert frame.ndim == 3 and frame.shape[2] == 3  # BGR, as cv2.VideoCapture gives it
        if not 20 < frame.mean() < 60:  # frames 0 (also the warm-up) and 2
            return []
        scores = dict.fromkeys(worker.EMOTIONS, 0.0) | {"sad": 0.4, "fear": 0.4, "happy": 0.2}
        return [{"box": np.array([10, 12, 30, 31], dtype=np.int32), "emotions": scores}]


def _clip(path, n=3):
    path.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()


def test_outputs_have_ferlight_live_schema(tmp_path):
    _clip(tmp_path / "clips" / "tune" / "a.mp4")
    out = tmp_path / "out"
    assert worker.main(["--clips", str(tmp_path / "clips"), "--out", str(out)], detector=FakeFer()) == 0
    records = [json.loads(line) for line in (out / "tune" / "a.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2] and records[0]["faces"] == records[2]["faces"] == []
    face = records[1]["faces"][0]
    ours = FrameResult(1, None, None, [Face((10, 12, 30, 31), dict.fromkeys(CLASS_NAMES, 0.0), "fear")]).to_json()
    assert list(records[1]) == list(ours) and list(face) == list(ours["faces"][0])  # ferlight.live's keys
    assert face["box"] == [10, 12, 30, 31] and face["track_id"] is None and records[1]["timestamp"] is None
    assert tuple(face["probabilities"]) == CLASS_NAMES == worker.EMOTIONS
    assert face["label"] == "fear"  # first of equal scores, in fer's class order
    timing = json.loads((out / "tune" / "a.timing.json").read_text())
    assert timing["frames"] == 3 and timing["fps"] > 0 and timing["cv_threads"] == cv2.getNumThreads()


def test_unreadable_clip_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "held").mkdir()
    (tmp_path / "held" / "bad.mp4").write_bytes(b"not a video")
    assert worker.main(["--clips", str(tmp_path), "--out", str(tmp_path / "out")], detector=FakeFer()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.mp4" in err[-1]
    assert not (tmp_path / "out").exists()


def test_peer_checks_clips_before_installing_anything(tmp_path, capsys):
    venv = tmp_path / "venv"
    assert peer_fer.main(["--clips", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--venv", str(venv)]) == 2
    assert "not a folder" in capsys.readouterr().err and not venv.exists()
