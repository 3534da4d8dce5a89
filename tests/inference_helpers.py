"""Small model bundles and image files for the inference tests (no downloads, seconds to build)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
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


def assert_verdict_consistent(row: dict) -> None:
    """A prediction row (Python's to_dict, a JSON row, a CSV row of strings, a REST answer) says what
    its own numbers say: the label is the rule's (verdict.DecisionRule) for its prob_fake, threshold
    and band, a fake has P(fake) > 0.5 and a real < 0.5, and confidence is the label's probability."""
    from deepfake_detector.verdict import DecisionRule

    def number(value: object) -> float | None:
        return None if value in ("", None) else float(value)  # type: ignore[arg-type]

    prob, confidence = number(row["prob_fake"]), number(row["confidence"])
    rule = DecisionRule(float(row["threshold"]), float(row["uncertain_band"]))
    faces = json.loads(row["faces"]) if isinstance(row["faces"], str) else row["faces"]
    assert int(row["face_count"]) == len(faces), row
    if prob is None:
        assert row["label"] == "" and confidence is None and not faces, row
        return
    assert prob == pytest.approx(max(face["prob_fake"] for face in faces), abs=1e-6), row
    assert row["label"] == rule.label(prob), row
    if row["label"] == "fake":
        assert prob > 0.5 and confidence == pytest.approx(prob, abs=1e-6), row
    elif row["label"] == "real":
        assert prob < 0.5 and confidence == pytest.approx(1 - prob, abs=1e-6), row
    else:
        assert confidence is None, row
    for face in faces:
        assert face["label"] == rule.label(face["prob_fake"]), row
