"""The LightningModule: binary cross-entropy on one logit, torchmetrics accuracy and AUC."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC

from deepfake_detector.training.config import TrainConfig


class DeepfakeClassifier(L.LightningModule):
    def __init__(self, model: nn.Module, cfg: TrainConfig, pos_weight: float = 1.0):
        super().__init__()
        self.model, self.cfg = model, cfg
        self.register_buffer("pos_weight", torch.tensor([pos_weight]))
        self.train_acc = BinaryAccuracy()
        self.train_auc = BinaryAUROC()
        self.val_acc = BinaryAccuracy()
        self.val_auc = BinaryAUROC()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).reshape(-1)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.cfg.label_smoothing:
            y = y * (1 - self.cfg.label_smoothing) + 0.5 * self.cfg.label_smoothing
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight.to(logits.dtype))

    def training_step(self, batch, batch_idx):
        x, y = batch
        if not torch.cuda.is_available():
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self(x)
        loss = self._loss(logits, y)
        probs = torch.sigmoid(logits.detach().float())
        self.train_acc.update(probs, y.int())
        self.train_auc.update(probs, y.int())
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True
        )
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_auc", self.train_auc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        probs = torch.sigmoid(logits.float())
        self.val_acc.update(probs, y.int())
        self.val_auc.update(probs, y.int())
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)
        self.log("val_auc", self.val_auc, on_epoch=True, prog_bar=True)

    def configure_optimizers(self):
        cfg = self.cfg
        params = [p for p in self.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(
                params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
            )
        if cfg.scheduler == "none":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(total * cfg.warmup_epochs / max(cfg.epochs, 1))

        def lr_at(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
