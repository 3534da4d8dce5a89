"""Self-blended images (Shiohara & Yamasaki, CVPR 2022), landmark-free for centred face crops.

A real face is blended with a slightly altered copy of itself inside a soft face-shaped mask. The
result carries the traces every face swap leaves (a blending boundary, a colour and sharpness
mismatch between face and surroundings) without any one generator's fingerprint, so a detector
trained on such pseudo-fakes learns cues that transfer to generators it never saw.

Without landmarks the mask is a jittered ellipse over the centre of the crop: the training data
are face crops with the face centred, as the face detector crops them at inference.
"""

from __future__ import annotations

import cv2
import numpy as np


def face_mask(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft elliptical mask (float32 in [0, 1]) roughly covering a centred face."""
    h, w = size
    mask = np.zeros((h, w), np.float32)
    centre = (int(w * rng.uniform(0.45, 0.55)), int(h * rng.uniform(0.48, 0.58)))
    axes = (int(w * rng.uniform(0.26, 0.38)), int(h * rng.uniform(0.32, 0.45)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(-15, 15)), 0, 360, 1.0, thickness=-1)
    # Erode or dilate a little, then feather: boundaries from sharp to very soft.
    k = int(rng.integers(1, max(2, w // 16)))
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = float(rng.uniform(0.5, 0.08 * w))
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)
    return mask / max(float(mask.max()), 1e-6)


def _altered(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 'source face': the same image with shifted colours, sharpness and a small warp."""
    img = image.astype(np.float32)
    # Colour: per-channel gain and offset, then brightness/contrast.
    img = img * rng.uniform(0.9, 1.1, size=3) + rng.uniform(-12, 12, size=3)
    img = (img - img.mean()) * rng.uniform(0.85, 1.15) + img.mean() + rng.uniform(-15, 15)
    img = np.clip(img, 0, 255)
    choice = rng.random()
    if choice < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)))
    elif choice < 0.7:
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=1.0)
        img = np.clip(img + rng.uniform(0.3, 1.0) * (img - blurred), 0, 255)
    h, w = image.shape[:2]
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def self_blend(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A pseudo-fake made from one real HxWx3 uint8 face crop."""
    mask = face_mask(image.shape[:2], rng)
    mask *= float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0]))
    source = _altered(image, rng)
    blended = mask[..., None] * source + (1.0 - mask[..., None]) * image.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)
