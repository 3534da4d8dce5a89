"""Augmentation pipelines (albumentations) built from a preset's `augment` section."""

from __future__ import annotations

import os

# albumentations asks PyPI for a newer version at import unless told not to (offline machines warn).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402

from deepfake_detector.training.config import AugmentConfig

_BORDERS = {
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "constant": cv2.BORDER_CONSTANT,
}


def build_train_augment(cfg: AugmentConfig) -> A.Compose:
    """Geometric jitter as Keras' ImageDataGenerator does it, then the degradations that real-world
    deepfakes go through (re-compression, blur, down-scaling, colour shifts)."""
    steps: list[A.BasicTransform] = []
    if cfg.hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if cfg.rotate or cfg.shift or cfg.shear or cfg.zoom:
        steps.append(
            A.Affine(
                # Keras zooms x and y independently.
                scale={"x": (1 - cfg.zoom, 1 + cfg.zoom), "y": (1 - cfg.zoom, 1 + cfg.zoom)},
                translate_percent={"x": (-cfg.shift, cfg.shift), "y": (-cfg.shift, cfg.shift)},
                rotate=(-cfg.rotate, cfg.rotate),
                shear=(-cfg.shear, cfg.shear),
                border_mode=_BORDERS[cfg.fill],
                p=1.0,
            )
        )
    if cfg.downscale_p:
        steps.append(A.Downscale(scale_range=(0.5, 0.9), p=cfg.downscale_p))
    if cfg.blur_p:
        steps.append(A.GaussianBlur(sigma_limit=(0.1, 1.5), blur_limit=0, p=cfg.blur_p))
    if cfg.color_jitter_p:
        steps.append(
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=cfg.color_jitter_p)
        )
    if cfg.noise_p:
        # std_range is a fraction of 255: sigma 2-15 grey levels, sensor noise to heavy re-encoding.
        steps.append(A.GaussNoise(std_range=(0.008, 0.06), p=cfg.noise_p))
    if cfg.jpeg_p:
        steps.append(A.ImageCompression(quality_range=(50, 100), p=cfg.jpeg_p))
    return A.Compose(steps)
