"""Pictures of real files for the report (random samples per class, duplicate examples, mean images,
the training preprocessing on one image) as embedded thumbnails with captions. A few dozen images
are decoded here again; the scan itself decodes each image once."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.data.manifest import Manifest
from deepfake_detector.eda.plots import image_to_data_uri
from deepfake_detector.eda.stats import ImageRecord

THUMBNAIL_SIZE = 128


@dataclass(frozen=True)
class Thumbnail:
    uri: str  # data: URI
    caption: str
    title: str = ""  # hover text (full path)


def _thumbnail(manifest: Manifest, index: int) -> Thumbnail | None:
    sample = manifest.samples[index]
    try:
        image = load_image(sample.path, size=THUMBNAIL_SIZE)
    except UnreadableImage:
        return None  # changed on disk since the scan
    name = os.path.basename(sample.path)
    caption = f"{sample.split}/{sample.class_name}/{name if len(name) <= 20 else name[:17] + '...'}"
    return Thumbnail(image_to_data_uri(image), caption, sample.path)


def random_samples(
    manifest: Manifest, by_class: Mapping[str, Sequence[ImageRecord]], per_class: int, seed: int
) -> dict[str, list[Thumbnail]]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Thumbnail]] = {}
    for name, records in by_class.items():
        chosen = sorted(rng.choice(len(records), size=min(per_class, len(records)), replace=False).tolist())
        rows[name] = [t for i in chosen if (t := _thumbnail(manifest, records[i].index))]
    return rows


def duplicate_examples(
    manifest: Manifest, groups: Sequence[Sequence[str]], max_groups: int = 6
) -> list[list[Thumbnail]]:
    """Thumbnails of the first three members of up to `max_groups` groups."""
    index_of = {s.path: i for i, s in enumerate(manifest.samples)}
    rows = [
        [t for path in group[:3] if (t := _thumbnail(manifest, index_of[path]))]
        for group in groups[:max_groups]
    ]
    return [row for row in rows if row]


def mean_images(means: Mapping[str, np.ndarray]) -> list[Thumbnail]:
    return [
        Thumbnail(
            image_to_data_uri(np.clip(image + 0.5, 0, 255).astype(np.uint8), lossless=True), f"mean {name}"
        )
        for name, image in means.items()
    ]


def preprocessing(path: str, seed: int) -> tuple[list[Thumbnail], str]:
    """One image through the training input pipeline, and a sentence describing it."""

    def step(image: np.ndarray, caption: str) -> Thumbnail:
        return Thumbnail(
            image_to_data_uri(image, lossless=True), f"{caption} ({image.shape[1]}x{image.shape[0]})"
        )

    steps = [step(load_image(path), "decoded by load_image")]
    try:
        from deepfake_detector.training.augment import build_train_augment
        from deepfake_detector.training.config import load_config

        config = load_config("default")
    except ImportError as exc:  # slim install without the training extras
        steps.append(step(load_image(path, size=THUMBNAIL_SIZE), f"load_image(size={THUMBNAIL_SIZE})"))
        return steps, f"Training augmentation not shown: the training extras are not installed ({exc})."
    resized = load_image(path, size=config.img_size)
    steps.append(step(resized, f"load_image(size={config.img_size}): training input"))
    augment = build_train_augment(config.augment)
    augment.set_random_seed(seed)
    steps += [step(augment(image=resized)["image"], f"training augmentation, draw {n}") for n in (1, 2)]
    settings = ", ".join(f"{key}={value}" for key, value in vars(config.augment).items())
    note = (
        f"Preset 'default': decode and resize to {config.img_size}x{config.img_size}, then a random "
        f"augmentation ({settings}); the result is scaled to [0, 1] and normalised with the model's mean "
        "and std."
    )
    return steps, note
