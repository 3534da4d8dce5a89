"""What social media does to images, as named, seeded perturbations, and the metrics under each.

Perturbations act on the decoded RGB uint8 images the model sees (already at its input size), so
the images are decoded once and each severity is applied in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import simplejpeg

from deepfake_detector.evaluation.metrics import compute_metrics


def jpeg_recompress(image: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    encoded = simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=int(quality), colorspace="RGB")
    return simplejpeg.decode_jpeg(encoded, colorspace="RGB")


def downscale(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    reduced = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(reduced, (width, height), interpolation=cv2.INTER_LINEAR)


def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma))


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, sigma) noise in 0-255 units, rounded and clipped back to uint8."""
    noise = rng.standard_normal(size=image.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += image
    np.rint(noise, out=noise)
    return np.clip(noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Perturbation:
    name: str
    parameter: str  # what a severity number means, for tables and plots
    severities: tuple[float, ...]  # mildest first
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("jpeg", "quality", (90, 70, 50, 30), jpeg_recompress),
        Perturbation("downscale", "scale", (0.75, 0.5, 0.25), downscale),
        Perturbation("blur", "sigma", (1, 2, 3), gaussian_blur),
        Perturbation("noise", "sigma", (5, 10, 20), gaussian_noise),
    )
}


def severity_key(severity: float) -> str:
    """JSON-friendly key: 90, 0.75, 3 (no trailing .0)."""
    return f"{severity:g}"


def perturb(image: np.ndarray, name: str, severity: float, index: int = 0, seed: int = 0) -> np.ndarray:
    """One image under one perturbation; random ones draw from a generator seeded by (seed, index)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; available: {', '.join(PERTURBATIONS)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    rng = np.random.default_rng((seed, index))
    return PERTURBATIONS[name].apply(image, severity, rng)


def perturbed_batches(
    images: Sequence[np.ndarray], name: str, severity: float, batch_size: int, seed: int = 0
) -> Iterator[list[np.ndarray]]:
    """The images perturbed batch by batch, so only one perturbed batch is in memory at a time."""
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        yield [perturb(images[i], name, severity, index=i, seed=seed) for i in range(start, stop)]


def robustness_table(
    predict_probs: Callable[[list[np.ndarray]], np.ndarray],
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    threshold: float,
    *,
    perturbations: Sequence[str] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    on_step: Callable[[str, float], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{perturbation: {severity: metrics}} scoring every perturbed copy at the fixed threshold."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name in perturbations or list(PERTURBATIONS):
        if name not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {name!r}; available: {', '.join(PERTURBATIONS)}")
        table[name] = {}
        for severity in PERTURBATIONS[name].severities:
            if on_step is not None:
                on_step(name, severity)
            batches = perturbed_batches(images, name, severity, batch_size, seed)
            probs = (
                np.concatenate([predict_probs(batch) for batch in batches]) if len(images) else np.zeros(0)
            )
            table[name][severity_key(severity)] = compute_metrics(labels, probs, threshold)
    return table
