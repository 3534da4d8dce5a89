"""Run-directory callbacks: one metrics.csv row per finished epoch, curves.png, throughput; and the
crash-safe pieces a run killed at any moment needs to resume (atomic checkpoints, early stopping)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.plugins.io import TorchCheckpointIO

from deepfake_detector.fileio import atomic_write_bytes, atomic_write_text

METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "train_auc",
    "val_loss",
    "val_acc",
    "val_auc",
    "lr",
    "img_per_s",
    "epoch_seconds",
]


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_metrics(path: str | Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def plot_curves(rows: list[dict], out_path: str | Path) -> None:
    """The notebook's two panels: train/val accuracy and train/val loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in rows]

    def series(key: str) -> list[float]:
        return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 5))
    ax_acc.plot(epochs, series("train_acc"), "o-", label="train accuracy")
    ax_acc.plot(epochs, series("val_acc"), "o-", label="val accuracy")
    ax_acc.plot(epochs, series("val_auc"), "s--", label="val AUC")
    ax_acc.set(title="Accuracy", xlabel="epoch")
    ax_acc.legend()
    ax_loss.plot(epochs, series("train_loss"), "o-", label="train loss")
    ax_loss.plot(epochs, series("val_loss"), "o-", label="val loss")
    ax_loss.set(title="Loss", xlabel="epoch")
    ax_loss.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_path, buffer.getvalue())


class EpochMetrics(L.Callback):
    """Writes metrics.csv (first column `epoch`) and curves.png after every finished epoch.

    On resume, rows from epochs that will be re-run are dropped, so each epoch appears once.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.rows: list[dict] = []
        self._epoch_start = 0.0
        self._train_end: float | None = None
        self._images = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not on_fit_start: Lightning restores the loops (current_epoch) from a checkpoint after that hook.
        start_epoch = trainer.current_epoch
        self.rows = [r for r in read_metrics(self.run_dir / "metrics.csv") if int(r["epoch"]) < start_epoch]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start, self._train_end, self._images = time.perf_counter(), None, 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._train_end is None:  # img/s counts training steps only, not validation
            self._train_end = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += len(batch[1]) * trainer.world_size
        elapsed = time.perf_counter() - self._epoch_start
        if elapsed > 0:
            pl_module.log("img_s", self._images / elapsed, prog_bar=True, on_step=True, on_epoch=False)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        now = time.perf_counter()
        seconds = now - self._epoch_start
        train_seconds = (self._train_end or now) - self._epoch_start
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k != "img_s"}
        row = {"epoch": trainer.current_epoch, "epoch_seconds": round(seconds, 2)}
        row["img_per_s"] = round(self._images / train_seconds, 2) if train_seconds else ""
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else ""
        for key in METRIC_COLUMNS:
            if key in ("epoch", "epoch_seconds", "img_per_s", "lr"):
                continue
            value = metrics.get(f"{key}_epoch", metrics.get(key))
            row[key] = round(value, 6) if value is not None else ""
        self.rows = [r for r in self.rows if int(r["epoch"]) != row["epoch"]] + [row]
        write_metrics(self.run_dir / "metrics.csv", self.rows)
        plot_curves(self.rows, self.run_dir / "curves.png")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temp file next to the target, fsync'd, then renamed over it.

    Lightning's own save stages the file in $TMPDIR and moves it: when /tmp is another filesystem
    (tmpfs) that move is a copy, so a process killed mid-copy leaves a truncated last.ckpt that the
    next --resume cannot load, and every kill strands a checkpoint-sized file in /tmp.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getbuffer())


class ResumableEarlyStopping(EarlyStopping):
    """EarlyStopping whose decision survives a restart.

    `trainer.should_stop` is not part of a checkpoint: a run killed after early stopping fired (the
    checkpoint of that epoch is already written) would train one more epoch on resume. The callback's
    own restored state says it stopped, so stop again before the next epoch starts.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if self.wait_count >= self.patience or self.stopped_epoch > 0:
            trainer.should_stop = True


def batches_to_run(batches: int, fraction: float) -> int | float:
    """A fraction of an epoch's batches as Lightning's limit_*_batches: the whole epoch (1.0) at
    fraction 1, else floor(batches * fraction) batches (the notebook's `len(generator) // 2`) but at
    least one. Lightning's own float limit rounds half of a single batch down to 0 and refuses to run."""
    if fraction >= 1.0:
        return 1.0
    return max(1, int(batches * fraction))


class BatchLimits(L.Callback):
    """Sets the Trainer's train/val batch limits from train_fraction / val_fraction once the data is
    set up (the batch counts per process are known only then), so every epoch runs >= 1 batch."""

    def __init__(self, train_fraction: float, val_fraction: float):
        self.train_fraction, self.val_fraction = train_fraction, val_fraction

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        train_batches, val_batches = trainer.datamodule.batches_per_epoch(trainer.world_size)
        trainer.limit_train_batches = batches_to_run(train_batches, self.train_fraction)
        trainer.limit_val_batches = batches_to_run(val_batches, self.val_fraction)
