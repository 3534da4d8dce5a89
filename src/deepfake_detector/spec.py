"""`model.json`: what a trained model is and how to feed it. Torch-free so slim installs can read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.fileio import atomic_write_text, json_default

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPEC_FORMAT = 1


@dataclass
class ModelSpec:
    """Everything needed to rebuild, feed and interpret a model, stored beside its weights.

    The network outputs one logit per image; probability of fake = sigmoid(logit / temperature),
    called fake when it is >= threshold.
    """

    architecture: str
    img_size: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    class_names: tuple[str, str] = ("real", "fake")
    threshold: float = 0.5
    threshold_method: str = "default"
    temperature: float = 1.0
    name: str = ""
    version: str = "1"
    preset: str = ""
    data_hash: str = ""
    trained_on: list[str] = field(default_factory=list)
    weights_sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    face_margin: float = 0.3  # crop policy for uncropped photos: box grown by this fraction per side
    format: int = SPEC_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=json_default)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model.json") -> ModelSpec:
        known = set(cls.__dataclass_fields__)
        missing = {"architecture", "img_size"} - set(data)
        if missing:
            raise ValueError(f"{source}: missing required fields {sorted(missing)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std", "class_names"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        spec = cls(**kwargs)
        if not (0.0 <= float(spec.threshold) <= 1.0):
            raise ValueError(f"{source}: threshold {spec.threshold} is outside [0, 1]")
        if not float(spec.temperature) > 0:
            raise ValueError(f"{source}: temperature must be positive, got {spec.temperature}")
        return spec

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read model spec ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probability of fake from raw logits."""
        z = np.asarray(logits, dtype=np.float64).reshape(-1) / float(self.temperature)
        return 1.0 / (1.0 + np.exp(-z))


def preprocess_batch(images: list[np.ndarray] | np.ndarray, spec: ModelSpec) -> np.ndarray:
    """RGB uint8 images already at spec.img_size -> float32 NCHW normalised as the model was trained."""
    batch = np.stack(images) if isinstance(images, list) else images
    if batch.ndim != 4 or batch.shape[1:] != (spec.img_size, spec.img_size, 3):
        raise ValueError(f"expected (N, {spec.img_size}, {spec.img_size}, 3) uint8, got {batch.shape}")
    # One table lookup per value instead of four passes of float arithmetic: 3x faster, and this
    # runs on the thread that feeds the model.
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None]
    if batch.dtype != np.uint8:  # float pixels in [0, 255]
        x = (batch.astype(np.float32) * np.float32(1.0 / 255.0) - mean[:, 0]) / std[:, 0]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    table = (np.arange(256, dtype=np.float32)[None, :] * np.float32(1.0 / 255.0) - mean) / std
    out = np.empty((batch.shape[0], 3, spec.img_size, spec.img_size), dtype=np.float32)
    for channel in range(3):
        out[:, channel] = table[channel][batch[..., channel]]
    return out
