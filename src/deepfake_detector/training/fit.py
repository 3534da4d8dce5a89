"""`train()`: preset + dataset -> a run directory with a calibrated, loadable model."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from deepfake_detector.data import Manifest, discover
from deepfake_detector.data.crop import CropSpec
from deepfake_detector.data.manifest import check_both_classes, paths_in_several_splits
from deepfake_detector.data.train_manifest import split_record, write_train_manifest
from deepfake_detector.evaluation.calibration import fit_temperature
from deepfake_detector.evaluation.metrics import compute_metrics
from deepfake_detector.evaluation.threshold import choose_threshold
from deepfake_detector.fileio import (
    atomic_output,
    atomic_write_json,
    atomic_write_text,
    printable,
    remove_stale_temps,
)
from deepfake_detector.models import create_model, model_info, save_bundle
from deepfake_detector.models.weights import as_safetensors
from deepfake_detector.spec import ModelSpec
from deepfake_detector.training.augment import build_train_augment
from deepfake_detector.training.callbacks import (
    AtomicCheckpointIO,
    BatchLimits,
    EpochMetrics,
    ResumableEarlyStopping,
)
from deepfake_detector.training.config import ConfigError, TrainConfig, load_config
from deepfake_detector.training.datamodule import DeepfakeDataModule
from deepfake_detector.training.module import DeepfakeClassifier
from deepfake_detector.training.progress import EpochLines, RichEpochBar, quiet_lightning

CONFIG_FILE, DATA_FILE, LAST_CKPT = "config.yaml", "data.json", "checkpoints/last.ckpt"


class RunError(ValueError):
    pass


@dataclass
class RunResult:
    run_dir: Path
    spec: ModelSpec
    epochs_completed: int
    # Under DDP every rank returns a RunResult, but only global rank 0 calibrates and saves the model:
    # on the others spec is the uncalibrated one and run_dir holds no model (Detector.train returns None).
    global_rank: int = 0


def _prepare_run(data: str | None, preset: str, run_dir: Path, overrides: dict, resume: bool):
    if resume:
        if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / DATA_FILE).is_file():
            raise RunError(
                f"{run_dir}: cannot resume, no {CONFIG_FILE} and {DATA_FILE} (not a run directory, or the "
                f"run was stopped before it started: train DATA --out {run_dir} starts it again)"
            )
        cfg = load_config(run_dir / CONFIG_FILE, overrides)
        recorded = json.loads((run_dir / DATA_FILE).read_text())
        data = data or recorded["root"]
        manifest = _select(discover(data, seed=cfg.seed), cfg)
        if manifest.digest() != recorded["manifest_hash"]:
            raise RunError(f"{data}: the dataset changed since {run_dir} started (manifest hash differs)")
        check_both_classes(manifest)  # before any epoch: calibration needs both classes in val
        return cfg, manifest, data
    if data is None:
        raise RunError("a DATA folder is needed unless --resume is given")
    if (run_dir / LAST_CKPT).exists() or (run_dir / "model.json").exists():
        raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir} or another --out")
    cfg = load_config(preset, overrides)
    manifest = _select(discover(data, seed=cfg.seed), cfg)
    check_both_classes(manifest)
    warn_split_leakage(manifest, data)
    return cfg, manifest, data


@rank_zero_only
def warn_split_leakage(manifest: Manifest, data: str) -> None:
    """Say so when the same file is listed in two splits (it would be validated on what it trained on)."""
    repeated = paths_in_several_splits(manifest)
    if repeated:
        print(
            f"warning: {data}: {len(repeated)} file(s) are listed in more than one split, e.g. "
            f"{printable(repeated[0])}; validation then scores images it trained on",
            file=sys.stderr,
            flush=True,
        )


def _record_run(run_dir: Path, cfg: TrainConfig, manifest: Manifest, data: str) -> None:
    """manifest.csv, train_manifest.json.gz, data.json, config.yaml: written once, by global rank 0
    only, each atomically. config.yaml comes last: a run directory that has it has everything
    --resume reads.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(run_dir / "manifest.csv") as tmp:
        manifest.to_csv(tmp)
    name = Path(os.path.abspath(data)).name
    # Paths and SHA-256 of every train/val file, so that evaluation can leave them out.
    write_train_manifest(run_dir, [(name, manifest)], seed=cfg.seed)
    atomic_write_json(
        run_dir / DATA_FILE,
        {
            "root": str(data),
            "name": name,
            "manifest_hash": manifest.digest(),
            "counts": manifest.counts(),
            "layout": manifest.layout,
            "split": split_record(cfg.seed),  # how a flat or CSV dataset was cut (evaluate reuses it)
        },
    )
    atomic_write_text(run_dir / CONFIG_FILE, cfg.to_yaml())


def _select(manifest: Manifest, cfg: TrainConfig) -> Manifest:
    manifest = Manifest(
        manifest.root, tuple(s for s in manifest if s.split in ("train", "val")), manifest.layout
    )
    return manifest.sample(cfg.limit_per_class, seed=cfg.seed) if cfg.limit_per_class else manifest


def _trainer_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision or ("16-mixed" if gpu else "32-true")
    return {
        "accelerator": cfg.accelerator,
        "devices": cfg.devices,
        "num_nodes": cfg.num_nodes,
        "strategy": cfg.strategy,
        "precision": precision,
        "max_epochs": cfg.epochs,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 10,
        "deterministic": False,  # max-pool backward has no deterministic CPU kernel; seeds still fix the data
    }


def _logger(run_dir: Path):
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(str(run_dir), name="tensorboard", version="")
    except ImportError:
        return False


def train(
    data: str | list[str] | None,
    preset: str = "default",
    out: str | Path = "runs/latest",
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    faces: str | None = None,
) -> RunResult:
    """Train a preset on a dataset's train split, select on val, calibrate, and save the model
    (model.json, weights, MODEL_CARD.md).

    `data` may list several datasets for a frozen-feature preset (training/heads.py); `faces`
    (auto, always, never) overrides how the preset cuts training images (data/crop.py)."""
    result = _train(data, preset, Path(out), overrides, resume, progress, faces)
    if result.global_rank == 0 and (result.run_dir / "model.json").is_file():
        from deepfake_detector.modelcard import write_model_card

        try:
            write_model_card(result.run_dir)
        except (OSError, ValueError) as exc:  # the model is saved; a card can be made later by `info`
            print(f"warning: {result.run_dir}: MODEL_CARD.md not written ({exc})", file=sys.stderr)
    return result


def _train(
    data: str | list[str] | None,
    preset: str,
    run_dir: Path,
    overrides: dict[str, Any] | None,
    resume: bool,
    progress: bool,
    faces: str | None,
) -> RunResult:
    overrides = {**(overrides or {}), **({"faces": faces} if faces else {})}
    sources = [data] if data is None or isinstance(data, str | Path) else [str(d) for d in data]
    if not resume:
        cfg = load_config(preset, overrides)
        if cfg.head:
            from deepfake_detector.training.heads import train_feature_head

            if any(d is None for d in sources):
                raise RunError("a DATA folder is needed")
            return RunResult(run_dir, train_feature_head([str(d) for d in sources], cfg, run_dir), cfg.epochs)
    if len(sources) > 1:
        raise RunError(
            f"{len(sources)} datasets given: training on several sources needs a frozen-feature preset "
            "(e.g. --preset default); the CNN presets train on one dataset"
        )
    return train_network(sources[0], preset, run_dir, overrides, resume, progress)


def train_network(
    data: str | None, preset: str, run_dir: Path, overrides: dict[str, Any], resume: bool, progress: bool
) -> RunResult:
    """A network trained end to end by Lightning (the CNN presets, and clip-gend)."""
    cfg, manifest, data = _prepare_run(data, preset, run_dir, overrides, resume)
    train_m, val_m = manifest.split("train"), manifest.split("val")
    if not len(train_m) or not len(val_m):
        raise RunError(f"{data}: need both train and val images, found {manifest.counts()}")
    labels = train_m.labels
    if labels.min() == labels.max():
        raise RunError(f"{data}: the train split has only one class ({manifest.counts()})")

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    spec = _new_spec(cfg, manifest, data)
    weights = as_safetensors(cfg.weights, run_dir, trust_pickle=cfg.trust_pickle) if cfg.weights else None
    model = create_model(cfg.model, pretrained=cfg.pretrained, weights=weights, img_size=cfg.img_size)
    if cfg.trainable == "layernorm":
        from deepfake_detector.models.clip.torch_vit import freeze_except_layernorm

        freeze_except_layernorm(model)
    model = model.to(memory_format=torch.channels_last)
    n_fake, n_real = int(labels.sum()), int(len(labels) - labels.sum())
    module = DeepfakeClassifier(model, cfg, pos_weight=n_real / n_fake if cfg.balance == "loss" else 1.0)
    gpu = torch.cuda.is_available()
    datamodule = DeepfakeDataModule(
        train_m,
        val_m,
        spec,
        cfg.batch_size,
        augment=build_train_augment(cfg.augment),
        self_blend_p=cfg.augment.self_blend_p,
        balance=cfg.balance,
        workers=cfg.workers if cfg.workers is not None else (4 if gpu else 0),
        cache_dir=cfg.cache_dir,
        seed=cfg.seed,
        faces=cfg.faces,  # type: ignore[arg-type]
    )
    trainer, checkpoint = _make_trainer(cfg, run_dir, progress)
    # Under DDP every rank runs this function (Lightning re-executes the command, or torchrun/SLURM
    # start it on each node); the Trainer knows the global rank from the launcher's environment.
    if trainer.is_global_zero and not resume:
        _record_run(run_dir, cfg, manifest, data)
    if trainer.is_global_zero and resume:  # what a kill in the middle of an atomic write left behind
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temps(folder)
    last = run_dir / LAST_CKPT
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume and last.is_file() else None)
    if not trainer.is_global_zero:
        # Calibration and the bundle are rank 0's alone; it runs no collective after fit, so nothing waits.
        return RunResult(run_dir, spec, trainer.current_epoch, trainer.global_rank)

    atomic_write_json(  # the files left out of training and validation, each with the reason
        run_dir / "unreadable.json", [{"path": e.path, "reason": e.reason} for e in datamodule.unreadable]
    )
    # What face finding saw per split and class: images with no face or several are counted here
    # (they are scored whole / by their largest face, never dropped).
    atomic_write_json(run_dir / "faces.json", datamodule.face_summary)
    best = checkpoint.best_model_path or str(last)
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    finalize(module.model, spec, datamodule, cfg)
    save_bundle(module.model, spec, run_dir)
    return RunResult(run_dir, spec, trainer.current_epoch)


def _new_spec(cfg: TrainConfig, manifest: Manifest, data: str) -> ModelSpec:
    info = model_info(cfg.model)
    name = Path(os.path.abspath(str(data))).name
    return ModelSpec(
        architecture=cfg.model,
        img_size=cfg.img_size,
        mean=info.mean,
        std=info.std,
        name=f"{cfg.name}-{name}",
        preset=cfg.name,
        data_hash=manifest.digest(),
        trained_on=[name],
        threshold_method=cfg.threshold_method,
        crop=CropSpec.from_dict(cfg.crop) if cfg.crop is not None else None,
    )


def _make_trainer(cfg: TrainConfig, run_dir: Path, progress: bool) -> tuple[L.Trainer, ModelCheckpoint]:
    mode = "min" if cfg.checkpoint_monitor.endswith("loss") else "max"
    # Saved at the end of the training epoch, after EpochMetrics has written that epoch's row (Lightning
    # runs metric-monitoring callbacks such as ModelCheckpoint last). A checkpoint saved at validation
    # end would come before the row: killed in between, the resumed run would skip the epoch and
    # metrics.csv would lack it. This way a kill leaves the row ahead of the checkpoint at worst, and
    # EpochMetrics drops rows of epochs that are run again.
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=cfg.checkpoint_monitor,
        mode=mode,
        save_last=True,
        save_on_train_epoch_end=True,
    )
    callbacks: list[L.Callback] = [
        checkpoint,
        ResumableEarlyStopping(
            cfg.early_stopping.monitor, patience=cfg.early_stopping.patience, mode=cfg.early_stopping.mode
        ),
        EpochMetrics(run_dir),
        BatchLimits(cfg.train_fraction, cfg.val_fraction),  # limit_train/val_batches, never 0 batches
    ]
    if progress:
        # rich draws nothing useful into a log file; tqdm lines do.
        callbacks.append(RichEpochBar() if sys.stderr.isatty() else EpochLines())
    quiet_lightning()
    trainer = L.Trainer(
        **_trainer_kwargs(cfg),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=_logger(run_dir),
        enable_progress_bar=progress and sys.stderr.isatty(),  # else EpochLines: a line per epoch
        enable_model_summary=False,
        default_root_dir=str(run_dir),
    )
    return trainer, checkpoint


@torch.no_grad()
def validation_logits(
    model: torch.nn.Module, datamodule: DeepfakeDataModule
) -> tuple[np.ndarray, np.ndarray]:
    """Logits on the whole validation split (no augmentation), for calibration and the threshold."""
    model = model.float().cpu().eval()
    dataset = datamodule.val_dataset
    logits = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=False)
    for x, _ in loader:
        logits.append(model(x.contiguous(memory_format=torch.channels_last)).reshape(-1).numpy())
    return np.concatenate(logits), np.asarray(dataset.labels)


def finalize(
    model: torch.nn.Module, spec: ModelSpec, datamodule: DeepfakeDataModule, cfg: TrainConfig
) -> None:
    """Temperature scaling and the decision threshold, both fitted on validation only."""
    logits, labels = validation_logits(model, datamodule)
    spec.temperature = float(fit_temperature(labels, logits))
    probs = spec.probability(logits)
    spec.threshold = float(
        choose_threshold(labels, probs, method=cfg.threshold_method, target_fpr=cfg.target_fpr)
    )
    spec.threshold_method = cfg.threshold_method
    spec.metrics = {"val": compute_metrics(labels, probs, spec.threshold)}


__all__ = ["ConfigError", "RunError", "RunResult", "train"]
