"""EmotionClassifier: learning, every optimiser and schedule, metrics over the whole test set."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ferlight.errors import ConfigError
from ferlight.options import OPTIMIZERS, SCHEDULERS
from ferlight.training.classifier import EmotionClassifier

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _batches(n=70, seed=0):
    """Normalised 48 x 48 faces whose class is written in their brightness (easy to learn)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 7
    x = torch.randn(n, 1, 48, 48, generator=g) * 0.3 + (y.float() - 3).view(-1, 1, 1, 1) * 0.5
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def _trainer(**kwargs):
    return L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )


def _module(**kwargs):
    return EmotionClassifier(arch="fervgg_small", class_names=NAMES, **kwargs)


@pytest.mark.slow
def test_learns_a_separable_task():
    torch.manual_seed(0)
    module = _module(optimizer="adam", lr=3e-3)
    trainer = _trainer(max_epochs=4)
    trainer.fit(module, _batches(), _batches(seed=1))
    assert trainer.callback_metrics["val/acc"] > 0.5
    assert trainer.callback_metrics["train/loss"] < 1.9  # chance level is ln 7 = 1.95


@pytest.mark.parametrize("optimizer,scheduler", zip(OPTIMIZERS, SCHEDULERS))
def test_every_optimizer_and_schedule_steps(optimizer, scheduler):
    module = _module(optimizer=optimizer, scheduler=scheduler, lr=1e-2)
    before = [p.detach().clone() for p in module.model.parameters()]
    _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1).fit(module, _batches(), _batches())
    assert any(not torch.equal(a, b) for a, b in zip(before, module.model.parameters()))


def test_test_metrics_cover_every_face_and_class():
    module = _module(tta="flip")
    trainer = _trainer()
    trainer.test(module, _batches(n=61))
    metrics = trainer.callback_metrics
    assert module.test_confusion.sum() == 61
    for kind in ("precision", "recall", "f1"):
        assert {f"test/{kind}/{n}" for n in NAMES} <= metrics.keys()
    assert metrics["test/acc"] == pytest.approx(module.test_confusion.diag().sum().item() / 61)


@pytest.mark.parametrize("tta,views", [("none", 1), ("flip", 2), ("tencrop", 10)])
def test_predict_proba_averages_views(tta, views):
    module = _module(crop_size=44).eval()
    calls = []
    module.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    probs = module.predict_proba(torch.randn(3, 1, 48, 48), tta)
    assert probs.shape == (3, 7) and torch.allclose(probs.sum(1), torch.ones(3))
    assert calls == [(3 * views, 1, 44, 44)]


def test_class_weights_change_the_loss():
    x, y = torch.randn(8, 7), torch.tensor([0, 0, 0, 0, 1, 2, 3, 4])
    plain = _module()._loss(x, y)
    weighted = _module(class_weights=[0.1, 5, 5, 5, 5, 5, 5])._loss(x, y)
    assert plain != pytest.approx(weighted.item())


@pytest.mark.parametrize("bad", [{"optimizer": "lbfgs"}, {"scheduler": "step"}, {"tta": "fivecrop"}, {"arch": "vgg19"}])
def test_bad_options_are_config_errors(bad):
    with pytest.raises(ConfigError, match=list(bad.values())[0]):
        EmotionClassifier(**{"arch": "fervgg_small", "class_names": NAMES, **bad})
