"""Training presets: one YAML per recipe (configs/*.yaml), any field overridable from the CLI."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from deepfake_detector.inference.engines import max_threads

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
    cache_dir: str | None = None  # on-disk cache of the cut uint8 regions (memory if unset)
    # Face regions (data/crop.py): the CropSpec fields to cut training faces by (stored in model.json
    # and used at prediction time); null trains on whole images, as the notebook did.
    crop: dict[str, Any] | None = None
    faces: str = "auto"  # auto | always | never: how training images are cut (see data/crop.py)
    # Frozen-feature models (training/heads.py), used when `head` is set and model is clip-vit-b16:
    head: str | None = None  # logistic | mlp
    features: str = "cls12"  # CLIP feature set, e.g. cls6+cls8+cls10+cls12 (models/clip/graph.py)
    fuse_with: str | None = None  # a CNN model to fuse with (e.g. fast): trusted on its own sources
    threads: int | None = None  # encoder threads (default 2)
    trainable: str = "all"  # all | layernorm (GenD: only LayerNorm affine parameters and the head)
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


MIN_IMG_SIZE, MAX_IMG_SIZE = 16, 1024  # 1024 px: a 64-image batch is already 800 MB of float32


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _build(
    cls: type, data: dict[str, Any], where: str, prefix: str = "", overridden: frozenset = frozenset()
) -> Any:
    """`cls` from `data`, every value checked against the field's type (ConfigError naming the key
    and the type wanted: where it came from a --set, the message says so)."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}{'.' + prefix[:-1] if prefix else ''}: unknown field(s) {unknown}; known: {sorted(known)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        dotted = prefix + key
        source = "--set" if dotted in overridden else where
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{source}: {dotted} is a section, not a value (set a field: {dotted}.<field>=...), got {value!r}"
                )
            value = _build(hints[key], value, where, f"{dotted}.", overridden)
        else:
            value = _typed(value, hints[key], dotted, source)
        kwargs[key] = value
    return cls(**kwargs)


_TYPE_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "null",
}


def _typed(value: Any, hint: Any, key: str, source: str) -> Any:
    """`value` as the type `hint` (int, float, str, bool, X | None, int | str, dict), or ConfigError."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        ok, converted = _convert(value, option)
        if ok:
            return converted
    wanted = " or ".join(
        _TYPE_NAMES.get(o, "a mapping" if typing.get_origin(o) is dict else str(o)) for o in options
    )
    raise ConfigError(f"{source}: {key} must be {wanted}, got {value!r}")


def _convert(value: Any, kind: Any) -> tuple[bool, Any]:
    if kind is Any:
        return True, value
    if kind is type(None):
        return value is None, None
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                return False, value
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and math.isfinite(value), float(value) if number else value
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)  # name=123, precision=16
        return isinstance(value, str), value
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict), value
    return True, value


def _parse_scalar(text: str) -> Any:
    """A --set value as YAML reads a scalar (3, 0.5, true, null); anything else stays the text."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if not isinstance(value, (dict, list)) else text


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
    overridden = frozenset(k.replace("-", "_") for k, v in (overrides or {}).items() if v is not None)
    config = _build(TrainConfig, data, str(path), overridden=overridden)
    _validate(config, str(path))
    return config


def _validate(cfg: TrainConfig, where: str) -> None:
    checks = [
        (
            MIN_IMG_SIZE <= cfg.img_size <= MAX_IMG_SIZE,
            f"img_size must be {MIN_IMG_SIZE} to {MAX_IMG_SIZE} pixels, got {cfg.img_size}",
        ),
        (cfg.batch_size >= 1, f"batch_size must be >= 1, got {cfg.batch_size}"),
        (cfg.epochs >= 1, f"epochs must be >= 1, got {cfg.epochs}"),
        (
            cfg.early_stopping.patience >= 0,
            f"early_stopping.patience must be >= 0, got {cfg.early_stopping.patience}",
        ),
        (cfg.limit_per_class is None or cfg.limit_per_class >= 1, "limit_per_class must be >= 1"),
        (
            cfg.workers is None or 0 <= cfg.workers <= max_threads(),
            f"workers must be 0 to {max_threads()} (4 per core), got {cfg.workers}",
        ),
        (
            cfg.threads is None or 1 <= cfg.threads <= max_threads(),
            f"threads must be 1 to {max_threads()} (4 per core), got {cfg.threads}",
        ),
        (0 < cfg.train_fraction <= 1 and 0 < cfg.val_fraction <= 1, "train/val_fraction must be in (0, 1]"),
        (cfg.optimizer in ("adam", "adamw", "sgd"), f"unknown optimizer {cfg.optimizer!r}"),
        (cfg.scheduler in ("none", "cosine"), f"unknown scheduler {cfg.scheduler!r}"),
        (cfg.balance in ("none", "loss", "sampler"), f"unknown balance {cfg.balance!r}"),
        (cfg.faces in ("auto", "always", "never"), f"faces must be auto, always or never, got {cfg.faces!r}"),
        (cfg.head in (None, "logistic", "mlp"), f"head must be logistic or mlp, got {cfg.head!r}"),
        (cfg.trainable in ("all", "layernorm"), f"trainable must be all or layernorm, got {cfg.trainable!r}"),
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
    if cfg.crop is not None:
        from deepfake_detector.data.crop import CropSpec

        try:
            CropSpec.from_dict(dict(cfg.crop))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: crop: {exc}") from exc
