"""Small model bundles and image files for the inference tests (no downloads, seconds to build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TINY_SIZE = 64


def make_bundle(folder: Path, *, img_size: int = TINY_SIZE, threshold: float = 0.5, seed: int = 0) -> Path:
    """A freshly initialised seed-cnn saved as a bundle; returns the folder."""
    import torch

    from deepfake_detector.models import create_model, save_bundle
    from deepfake_detector.spec import ModelSpec

    torch.manual_seed(seed)
    model = create_model("seed-cnn", img_size=img_size)
    spec = ModelSpec(architecture="seed-cnn", img_size=img_size, threshold=threshold, name="tiny-test")
    save_bundle(model, spec, folder)
    return folder


def write_images(
    folder: Path, n: int, *, size: tuple[int, int] = (80, 80), seed: int = 0, ext: str = ".jpg"
) -> list[Path]:
    """n smooth random RGB images (JPEG or PNG) of (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize(size, Image.BILINEAR)
        path = folder / f"img_{i:03d}{ext}"
        img.save(path)
        paths.append(path)
    return paths


def shared_images(dataset: str, split: str, cls: str, n: int) -> list[Path]:
    folder = SHARED_DATA / dataset / split / cls
    return sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []


def make_exported_bundle(folder: Path) -> Path:
    """make_bundle + its ONNX export beside it (what `predict` runs by default)."""
    from deepfake_detector.inference.export import export_onnx

    make_bundle(folder)
    export_onnx(folder)
    return folder
