"""Checkpoints load with torch alone (weights_only), slim copies predict like their source, and
the shipped model is the default."""

import pytest
import torch

import ferlight.inference.checkpoint
from ferlight.data import CLASS_NAMES
from ferlight.errors import CheckpointError
from ferlight.inference.checkpoint import PREFIX, load_model, read_checkpoint, resolve_checkpoint, save_slim
from ferlight.models import create_model


@pytest.fixture
def dropout_checkpoint(tmp_path):
    """A checkpoint with dropout, 44 px crops and optimiser state, and the model it holds."""
    torch.manual_seed(0)
    model = create_model("fervgg_small", dropout=0.1)
    hp = {"arch": "fervgg_small", "model_options": {"dropout": 0.1}, "class_names": CLASS_NAMES, "crop_size": 44}
    state = {PREFIX + k: v for k, v in model.state_dict().items()}
    path = tmp_path / "full.ckpt"
    torch.save({"hyper_parameters": hp, "state_dict": state, "optimizer_states": [{"m": torch.zeros(1000)}]}, path)
    return path, model.eval()


def test_load_rebuilds_the_model_in_eval_mode(dropout_checkpoint):
    path, model = dropout_checkpoint
    loaded = load_model(path)
    x = torch.randn(2, 1, 44, 44)
    assert not loaded.model.training and loaded.crop_size == 44 and loaded.model_options == {"dropout": 0.1}
    assert torch.equal(loaded.model(x), model(x))


@pytest.mark.parametrize("half", [False, True])
def test_slim_copy_drops_training_state_and_predicts_the_same(dropout_checkpoint, tmp_path, half):
    path, model = dropout_checkpoint
    slim = tmp_path / "slim.pt"
    save_slim(path, slim, half=half)
    assert "optimizer_states" not in read_checkpoint(slim)
    assert slim.stat().st_size < path.stat().st_size
    x = torch.randn(4, 1, 44, 44)
    got = load_model(slim).model(x)
    assert torch.allclose(got, model(x), atol=2e-2 if half else 0)


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "x.ckpt"
    torch.save({"weights": torch.zeros(3)}, bogus)
    with pytest.raises(CheckpointError, match="not a ferlight checkpoint"):
        load_model(bogus)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(tmp_path / "missing.ckpt")


def test_missing_default_model_is_a_checkpoint_error(monkeypatch, tmp_path):
    monkeypatch.setattr(ferlight.inference.checkpoint, "DEFAULT_WEIGHTS", tmp_path / "default.pt")
    with pytest.raises(CheckpointError, match="default model .*default.pt is missing"):
        resolve_checkpoint()
    (tmp_path / "default.pt").write_bytes(b"")
    assert resolve_checkpoint() == tmp_path / "default.pt"
