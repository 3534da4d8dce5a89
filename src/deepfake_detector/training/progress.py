"""What `train` prints: epochs counted from 1 ("Epoch 1/2"), and none of Lightning's start-up tips,
accelerator lines or third-party deprecation notes (they say nothing about the user's run)."""

from __future__ import annotations

import logging
import sys
import warnings

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

# Where Lightning logs its rank-zero info lines; the ones below say nothing about the user's run
# (others, e.g. DDP's "distributed_backend=gloo" and "GLOBAL_RANK: 1", still speak).
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
NOISE = ("💡 Tip:", "GPU available", "TPU available", "HPU available", "`Trainer.fit` stopped")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(NOISE)


def epoch_label(current_epoch: int, max_epochs: int | None) -> str:
    """ "Epoch 1/2" for Lightning's 0-based first epoch of two."""
    return f"Epoch {current_epoch + 1}" + (f"/{max_epochs}" if max_epochs and max_epochs > 0 else "")


class EpochLines(L.Callback):
    """For logs and pipes, where a redrawn bar is noise: one line per finished epoch, e.g.
    "Epoch 1/2: train loss 0.705 acc 0.417 | val loss 0.693 acc 0.583 AUC 0.444 | 256 img/s"."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = {
            k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1
        }
        parts = [epoch_label(trainer.current_epoch, trainer.max_epochs) + ":"]
        parts.append(_fields("train", m, ("train_loss_epoch", "loss"), ("train_acc", "acc")))
        parts.append(_fields("| val", m, ("val_loss", "loss"), ("val_acc", "acc"), ("val_auc", "AUC")))
        if "img_s" in m:
            parts.append(f"| {m['img_s']:.0f} img/s")
        print(" ".join(p for p in parts if p), file=sys.stderr, flush=True)


def _fields(title: str, metrics: dict[str, float], *names: tuple[str, str]) -> str:
    shown = [f"{label} {metrics[key]:.3f}" for key, label in names if key in metrics]
    return f"{title} {' '.join(shown)}" if shown else ""


class RichEpochBar(RichProgressBar):
    """Lightning's rich bar (for terminals), epochs counted from 1."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = epoch_label(current_epoch, self.trainer.max_epochs)
        return f"{text:{len(self.validation_description)}}"


def quiet_lightning() -> None:
    """Lightning's tips and accelerator lines are dropped; its warnings and other lines are kept."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    # torch's pytree deprecation raised inside Lightning: nothing the user can act on.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
