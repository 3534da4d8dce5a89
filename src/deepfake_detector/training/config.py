"""Training presets: one YAML per recipe (configs/*.yaml), any field overridable from the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class AugmentConfig:
    hflip: bool = True
    rotate: float = 0.0  # degrees, uniform in [-rotate, rotate]
    shift: float = 0.0  # fraction of width/height
    shear: float = 0.0  # degrees
    zoom: float = 0.0  # scale in [1 - zoom, 1 + zoom]
    fill: str = "nearest"  # nearest | reflect | constant
    jpeg_p: float = 0.0
    blur_p: float = 0.0
    downscale_p: float = 0.0
    color_jitter_p: float = 0.0
    noise_p: float = 0.0  # Gaussian noise, sigma 2-15 grey levels
    self_blend_p: float = 0.0  # fraction of fakes replaced by self-blended reals (self_blend.py)


@dataclass
class EarlyStoppingConfig:
    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 5


@dataclass
class TrainConfig:
    name: str = "custom"
    model: str = "seed-cnn"
    pretrained: bool = False
    weights: str | None = None  # local pretrained-weights file (timm models offline)
    trust_pickle: bool = False  # allow a pickle-based --weights file (.pth): it can run code when read
    img_size: int = 128
    batch_size: int = 64
    epochs: int = 10
    train_fraction: float = 1.0  # fraction of the training batches run per epoch
    val_fraction: float = 1.0
    optimizer: str = "adamw"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"  # none | cosine
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    balance: str = "none"  # none | loss | sampler
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_monitor: str = "val_loss"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    threshold_method: str = "balanced_accuracy"  # balanced_accuracy | eer | fpr
    target_fpr: float = 0.05
    seed: int = 42
    limit_per_class: int | None = None  # cap per split and class, for quick runs
    workers: int | None = None  # data loader workers; default 0 on CPU, 4 on GPU
    cache_dir: str | None = None  # on-disk cache of resized uint8 arrays (memory if unset)
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    precision: str | None = None  # default: 16-mixed on GPU, 32-true on CPU

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class ConfigError(ValueError):
    pass


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for key, value in data.items():
        default = (
            known[key].default_factory() if known[key].default_factory is not dataclasses.MISSING else None
        )
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`augment.jpeg_p=0.5`, `epochs=3`); string values are parsed as YAML scalars."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy
    for dotted, value in overrides.items():
        if value is None:
            continue
        parts = dotted.replace("-", "_").split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {dotted}: {part} is not a section")
        node[parts[-1]] = _parse_scalar(value) if isinstance(value, str) else value
    return data


def load_config(preset: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A preset name (`seed`, `default`) or a YAML path, with overrides applied."""
    path = Path(preset)
    if not path.suffix:
        path = PRESETS_DIR / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"{preset}: no such preset (available: {', '.join(list_presets())}) or YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    data = apply_overrides(data, overrides or {})
    config = _build(TrainConfig, data, str(path))
    _validate(config, str(path))
    return config


def _validate(cfg: TrainConfig, where: str) -> None:
    checks = [
        (cfg.img_size >= 16, "img_size must be >= 16"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.epochs >= 1, "epochs must be >= 1"),
        (0 < cfg.train_fraction <= 1 and 0 < cfg.val_fraction <= 1, "train/val_fraction must be in (0, 1]"),
        (cfg.optimizer in ("adam", "adamw", "sgd"), f"unknown optimizer {cfg.optimizer!r}"),
        (cfg.scheduler in ("none", "cosine"), f"unknown scheduler {cfg.scheduler!r}"),
        (cfg.balance in ("none", "loss", "sampler"), f"unknown balance {cfg.balance!r}"),
        (
            cfg.threshold_method in ("balanced_accuracy", "eer", "fpr"),
            f"unknown threshold_method {cfg.threshold_method!r}",
        ),
        (
            cfg.augment.fill in ("nearest", "reflect", "constant"),
            f"unknown augment.fill {cfg.augment.fill!r}",
        ),
        (cfg.lr > 0, "lr must be positive"),
        *(
            (0.0 <= getattr(cfg.augment, name) <= 1.0, f"augment.{name} must be in [0, 1]")
            for name in ("jpeg_p", "blur_p", "downscale_p", "color_jitter_p", "noise_p", "self_blend_p")
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{where}: {message}")
