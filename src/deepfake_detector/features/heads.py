"""Heads on frozen features: standardise, then a logistic layer or a one-hidden-layer MLP.

Inference is numpy only (no torch, no sklearn). On disk a head is two files in a model folder:
`head.safetensors` (tensors `mean`, `std`, `w0`, `b0`[, `w1`, `b1`]; W stored [in, out]) and
`head.json` (kind, feature set, encoder id, training facts). Nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.fileio import atomic_write_bytes, atomic_write_json

HEAD_WEIGHTS = "head.safetensors"
HEAD_META = "head.json"
HEAD_FORMAT = 1
HEAD_KINDS = {"logistic": 1, "mlp": 2}  # kind -> number of layers


class InvalidHead(ValueError):
    """A head file that cannot be used; names the file and the reason."""


@dataclass
class FeatureHead:
    """logit = layers(standardise(x)); ReLU between layers. W are [in, out], b are [out]."""

    kind: str
    mean: np.ndarray
    std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    feature_set: str
    encoder_id: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(n, dim) features -> (n,) float32 fake-logits."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{self.kind} head on {self.feature_set} expects (n, {self.dim}) features, got {x.shape}"
            )
        z = (x - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            z = z @ w + b
            if i < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        return z.reshape(-1).astype(np.float32)

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save

        folder = Path(folder)
        tensors = {"mean": self.mean, "std": self.std}
        for i, (w, b) in enumerate(self.layers):
            tensors[f"w{i}"], tensors[f"b{i}"] = w, b
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        atomic_write_bytes(folder / HEAD_WEIGHTS, save(tensors))
        meta = {
            "format": HEAD_FORMAT,
            "kind": self.kind,
            "dim": self.dim,
            "feature_set": self.feature_set,
            "encoder_id": self.encoder_id,
            "info": self.info,
        }
        atomic_write_json(folder / HEAD_META, meta)

    @classmethod
    def load(cls, folder: str | Path) -> FeatureHead:
        folder = Path(folder)
        meta = _read_meta(folder / HEAD_META)
        tensors = _read_tensors(folder / HEAD_WEIGHTS)
        n_layers = HEAD_KINDS[meta["kind"]]
        names = ["mean", "std"] + [f"{p}{i}" for i in range(n_layers) for p in "wb"]
        missing = [n for n in names if n not in tensors]
        if missing:
            raise InvalidHead(f"{folder / HEAD_WEIGHTS}: missing tensors {missing} for a {meta['kind']} head")
        head = cls(
            kind=meta["kind"],
            mean=tensors["mean"],
            std=tensors["std"],
            layers=[(tensors[f"w{i}"], tensors[f"b{i}"]) for i in range(n_layers)],
            feature_set=meta["feature_set"],
            encoder_id=meta["encoder_id"],
            info=meta.get("info", {}),
        )
        _check_shapes(head, folder / HEAD_WEIGHTS, int(meta["dim"]))
        return head


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidHead(f"{path}: cannot read head description ({exc})") from exc
    if not isinstance(meta, dict):
        raise InvalidHead(f"{path}: expected a JSON object")
    missing = {"format", "kind", "dim", "feature_set", "encoder_id"} - set(meta)
    if missing:
        raise InvalidHead(f"{path}: missing fields {sorted(missing)}")
    if meta["format"] != HEAD_FORMAT:
        raise InvalidHead(f"{path}: head format {meta['format']} is not {HEAD_FORMAT}")
    if meta["kind"] not in HEAD_KINDS:
        raise InvalidHead(f"{path}: unknown head kind {meta['kind']!r} (known: {', '.join(HEAD_KINDS)})")
    return meta


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    try:
        return load(path.read_bytes())
    except Exception as exc:  # OSError, or safetensors' own errors on a corrupt file
        raise InvalidHead(f"{path}: not a readable safetensors file ({exc})") from exc


def _check_shapes(head: FeatureHead, path: Path, dim: int) -> None:
    width = dim
    ok = head.mean.shape == (dim,) and head.std.shape == (dim,) and bool(np.all(head.std > 0))
    for w, b in head.layers:
        ok = ok and w.ndim == 2 and w.shape[0] == width and b.shape == (w.shape[1],)
        width = w.shape[1] if w.ndim == 2 else -1
    if not ok or width != 1:
        shapes = [tuple(w.shape) for w, _ in head.layers]
        raise InvalidHead(f"{path}: tensor shapes {shapes} do not make a {dim}->1 {head.kind} head")
