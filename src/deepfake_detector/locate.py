"""Where a model reference points: `default`, a run directory, a weights/spec/onnx file, or a model
on the Hugging Face Hub (`hf://owner/name[@revision]`, downloaded into the HF cache: hub.py)."""

from __future__ import annotations

from pathlib import Path

PACKAGED_MODELS = Path(__file__).parent / "weights"


class ModelNotFound(FileNotFoundError):
    pass


def model_dir(model_ref: str | Path) -> Path:
    """The folder holding model.json for a reference; `default` is the model shipped in the package."""
    ref = str(model_ref)
    if ref.startswith("hf://"):
        from deepfake_detector.hub import download_model

        return download_model(ref)
    if ref == "default" or (not Path(ref).exists() and (PACKAGED_MODELS / ref / "model.json").is_file()):
        folder = PACKAGED_MODELS / ref
        if not (folder / "model.json").is_file():
            raise ModelNotFound(f"packaged model {ref!r} is not installed (looked in {folder})")
        return folder
    path = Path(ref)
    if path.is_dir():
        if not (path / "model.json").is_file():
            raise ModelNotFound(f"{path}: no model.json in this folder (is it a finished run directory?)")
        return path
    if path.is_file():
        if not (path.parent / "model.json").is_file():
            raise ModelNotFound(f"{path}: no model.json beside it to say how to use these weights")
        return path.parent
    raise ModelNotFound(
        f"{ref}: no such model file or folder (use a run directory, a model file, 'default' or hf://owner/name)"
    )


def locate_model(model_ref: str | Path, weights_name: str = "model.safetensors") -> tuple[Path, Path]:
    """(model.json, weights file) for a reference; a given weights file (e.g. .onnx) is kept as is."""
    folder = model_dir(model_ref)
    path = Path(str(model_ref))
    weights = path if path.is_file() and path.name != "model.json" else folder / weights_name
    if not weights.is_file():
        raise ModelNotFound(f"{weights}: weights file missing")
    return folder / "model.json", weights
