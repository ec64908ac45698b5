"""scripts/convert_mtcnn_weights.py maps facenet-pytorch's state dicts (their key names, O-Net's
landmark layer included) onto ferlight's networks."""

import runpy
import sys
from pathlib import Path

import pytest
import torch

from ferlight.inference.mtcnn import WEIGHTS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "convert_mtcnn_weights.py"
FACENET_KEYS = {
    "pnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4_1", "conv4_2"],
    "rnet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "dense4", "prelu4", "dense5_1", "dense5_2"],
    "onet": ["conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4", "prelu4", "dense5", "prelu5", "dense6_1", "dense6_2"],
}


def to_facenet(name: str, state: dict) -> dict:
    """``state`` (ferlight's keys) under facenet-pytorch's names, with O-Net's landmark layer."""
    out, layers = {}, iter(FACENET_KEYS[name])
    layer = None
    for key, value in state.items():
        if key.endswith("weight"):
            layer = next(layers)
        out[f"{layer}.{key.rsplit('.', 1)[1]}"] = value
    if name == "onet":
        out["dense6_3.weight"], out["dense6_3.bias"] = torch.zeros(10, 256), torch.zeros(10)
    return out


def test_facenet_weights_convert_to_the_shipped_file(tmp_path, monkeypatch):
    shipped = torch.load(WEIGHTS, weights_only=True)
    for name, state in shipped.items():
        torch.save(to_facenet(name, state), tmp_path / f"{name}.pt")
    out = tmp_path / "mtcnn.pt"
    monkeypatch.setattr(sys, "argv", ["convert_mtcnn_weights.py", str(tmp_path), "--out", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    converted = torch.load(out, weights_only=True)
    for name, state in shipped.items():
        assert list(converted[name]) == list(state)
        assert all(torch.equal(converted[name][k], v) for k, v in state.items())


def test_a_file_of_other_shapes_is_refused(tmp_path, monkeypatch):
    for name in ("pnet", "rnet", "onet"):
        torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / f"{name}.pt")
    monkeypatch.setattr(sys, "argv", ["convert_mtcnn_weights.py", str(tmp_path), "--out", str(tmp_path / "out.pt")])
    with pytest.raises(SystemExit, match="does not match"):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert not (tmp_path / "out.pt").exists()
