"""A trained model on disk: `model.safetensors` + `model.json`, checked before anything is used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save as save_safetensors

from deepfake_detector.fileio import atomic_write_bytes, sha256_file
from deepfake_detector.locate import locate_model
from deepfake_detector.models.registry import create_model
from deepfake_detector.models.weights import load_state_dict_file
from deepfake_detector.spec import ModelSpec

WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "model.json"


class InvalidModelFile(ValueError):
    """Weights that do not match their spec or architecture; names the file and what is wrong."""


def save_bundle(model: nn.Module, spec: ModelSpec, out_dir: str | Path) -> Path:
    """Write weights then spec (with the weights' SHA-256), each atomically. Returns the spec path."""
    out_dir = Path(out_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = save_safetensors(state, metadata={"architecture": spec.architecture})
    atomic_write_bytes(out_dir / WEIGHTS_FILE, blob)
    spec.weights_sha256 = hashlib.sha256(blob).hexdigest()
    spec.save(out_dir / SPEC_FILE)
    return out_dir / SPEC_FILE


def validate_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InvalidModelFile(
            f"{source}: weights do not match the architecture (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, ref in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise InvalidModelFile(
                f"{source}: {key} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
            )
        if got.dtype != ref.dtype:
            raise InvalidModelFile(f"{source}: {key} has dtype {got.dtype}, expected {ref.dtype}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise InvalidModelFile(f"{source}: {key} holds NaN or infinite values")


def load_bundle(model_ref: str | Path, *, verify_checksum: bool = True) -> tuple[nn.Module, ModelSpec]:
    """Load a model from a run directory, a `model.safetensors`/`model.json` path, or `default`.

    The weights' SHA-256 must match the one in model.json; shapes, dtypes and values are checked.
    """
    spec_path, weights_path = locate_model(model_ref, weights_name=WEIGHTS_FILE)
    spec = ModelSpec.load(spec_path)
    if verify_checksum:
        actual = sha256_file(weights_path)
        if spec.weights_sha256 and actual != spec.weights_sha256:
            raise InvalidModelFile(
                f"{weights_path}: checksum mismatch (SHA-256 {actual[:16]}..., model.json expects "
                f"{spec.weights_sha256[:16]}...): the file was modified or corrupted"
            )
        if not spec.weights_sha256:
            raise InvalidModelFile(f"{spec_path}: no weights_sha256 recorded, cannot verify {weights_path}")
    state = load_state_dict_file(weights_path)
    model = create_model(spec.architecture, pretrained=False, img_size=spec.img_size)
    validate_state_dict(model, state, str(weights_path))
    model.load_state_dict(state)
    model.eval()
    return model, spec
