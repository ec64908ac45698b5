"""EmotionClassifier: the LightningModule that trains any registered architecture.

It owns the loss, the optimiser and scheduler, and the torchmetrics that every run reports
(accuracy, macro F1, per-class precision / recall / F1 and the confusion matrix, synchronised
across DDP ranks by torchmetrics). It knows nothing of MLflow: tracking is a logger handed to the
Trainer. Batches arrive already normalised by the DataModule (augmented in training, full 48 x 48
at evaluation); evaluation crops and test-time views come from ``preprocess.tta_views``, the same
function live inference uses.
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from ferlight.data.preprocess import tta_views
from ferlight.errors import ConfigError
from ferlight.evaluation.predict import tta_probabilities
from ferlight.models import create_model
from ferlight.options import OPTIMIZERS, SCHEDULERS, TTA_MODES, check_choice
from ferlight.training.config import FitConfig

DEFAULTS = FitConfig()  # the module's defaults are the command line's


class EmotionClassifier(L.LightningModule):
    """Train and evaluate ``create_model(arch, **model_options)`` on facial emotion batches.

    Logged each epoch: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/f1_macro``,
    ``val/f1/<class>``; on test: ``test/acc``, ``test/f1_macro`` and ``test/{precision,recall,f1}/
    <class>``. After ``trainer.test`` the summed confusion matrix is in ``test_confusion``.
    """

    def __init__(
        self,
        arch: str = DEFAULTS.arch,
        model_options: dict | None = None,
        class_names: Sequence[str] = (),
        crop_size: int = DEFAULTS.crop_size,
        optimizer: str = DEFAULTS.optimizer,
        lr: float = DEFAULTS.lr,
        weight_decay: float = DEFAULTS.weight_decay,
        momentum: float = DEFAULTS.momentum,
        scheduler: str = DEFAULTS.scheduler,
        label_smoothing: float = DEFAULTS.label_smoothing,
        class_weights: Sequence[float] | None = None,
        tta: str = DEFAULTS.tta,
        channels_last: bool = DEFAULTS.channels_last,
    ) -> None:
        super().__init__()
        if not class_names:
            raise ConfigError("class_names must name the classes the model predicts")
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_choice("scheduler", scheduler, SCHEDULERS)
        check_choice("test-time augmentation", tta, TTA_MODES)
        self.save_hyperparameters(logger=False)  # ferlight.training.run logs the whole config itself
        self.class_names = tuple(class_names)
        self.model = create_model(arch, num_classes=len(self.class_names), **(model_options or {}))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.tta = tta
        self.test_confusion: torch.Tensor | None = None

        n = len(self.class_names)
        # labels were checked when read; validating every training batch would sync with the GPU
        self.train_acc = MulticlassAccuracy(n, average="micro", validate_args=False)
        self.val_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(n, average="micro"), "f1_macro": MulticlassF1Score(n, average="macro")},
            prefix="val/",
        )
        self.val_f1 = MulticlassF1Score(n, average=None)
        self.test_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(n, average="micro"), "f1_macro": MulticlassF1Score(n, average="macro")},
            prefix="test/",
        )
        self.test_per_class = MetricCollection(
            {
                "precision": MulticlassPrecision(n, average=None),
                "recall": MulticlassRecall(n, average=None),
                "f1": MulticlassF1Score(n, average=None),
            }
        )
        self.test_confmat = MulticlassConfusionMatrix(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=self.memory_format))

    def predict_proba(self, x: torch.Tensor, tta: str | None = None) -> torch.Tensor:
        """Class probabilities of a normalised 48 x 48 batch, averaged over test-time views."""
        return tta_probabilities(self, x, tta or self.tta, self.hparams.crop_size)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), y, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self._loss(logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(tta_views(x, "none", self.hparams.crop_size)[0])
        self.log("val/loss", self._loss(logits, y), on_epoch=True, prog_bar=True, sync_dist=True)
        self.val_metrics.update(logits, y)
        self.val_f1.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.log_dict(self._per_class("val/f1", self.val_f1.compute()))
        self.val_metrics.reset()
        self.val_f1.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        probs = self.predict_proba(x)
        self.test_metrics.update(probs, y)
        self.test_per_class.update(probs, y)
        self.test_confmat.update(probs, y)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        for name, values in self.test_per_class.compute().items():
            self.log_dict(self._per_class(f"test/{name}", values))
        self.test_confusion = self.test_confmat.compute().cpu()
        for metric in (self.test_metrics, self.test_per_class, self.test_confmat):
            metric.reset()

    def _per_class(self, prefix: str, values: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f"{prefix}/{name}": value for name, value in zip(self.class_names, values)}

    def configure_optimizers(self):
        hp = self.hparams
        params = self.model.parameters()
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, nesterov=True, weight_decay=hp.weight_decay)
        elif hp.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(params, lr=hp.lr, momentum=0.0, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "none":
            return opt
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.75, patience=5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/acc"}}
        # cosine and one-cycle step every batch over the planned steps, so that a time budget
        # (ferlight.training.budget.TimeBudget) can advance them to the share of the budget spent
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        if hp.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps - 1))
        else:
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
