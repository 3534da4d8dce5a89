"""Face statistics per class: how many faces the detector finds and how large they are.

Real and fake images whose faces differ in count or size give a model a shortcut that has
nothing to do with manipulation; and images with no face or several faces are the ones a
face-normalised model will score differently from the dataset's own crops.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from deepfake_detector.data.crop import CropSpec, RegionStats, cut_regions, summarize_regions
from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.data.manifest import Manifest

FACES_PER_CLASS = 400  # images per class run through face detection (a seeded sample)
SIZE_SHORTCUT_AUC = 0.8  # the face-size AUC that flags a shortcut, as the other property checks


def face_statistics(
    manifest: Manifest,
    per_class: int | None = FACES_PER_CLASS,
    seed: int = 0,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Per class: share of images with 0 / 1 / 2+ faces and the face-size distribution (largest
    face side / image's shorter side) over a seeded sample; plus a face-size shortcut check."""
    chosen: list[int] = []
    for label in (0, 1):
        indices = [i for i, s in enumerate(manifest.samples) if s.label == label]
        random.Random(seed).shuffle(indices)
        chosen += sorted(indices if per_class is None else indices[:per_class])
    spec = CropSpec()

    def one(index: int) -> RegionStats | None:
        try:
            regions = cut_regions(load_image(manifest.samples[index].path), spec, 16, "always")
        except UnreadableImage:
            return None
        return RegionStats(regions.faces_found, regions.face_fraction, "face" if regions.crops else "none")

    stats, labels = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, (index, result) in enumerate(zip(chosen, pool.map(one, chosen), strict=True), start=1):
            if result is not None:
                stats.append(result)
                labels.append(manifest.samples[index].label)
            if on_progress is not None and n % 64 == 0:
                on_progress(64)
    summary = summarize_regions(stats, np.array(labels, dtype=int))
    for cls in summary.values():
        n = max(1, cls["images"])
        cls["share"] = {k: round(cls[k] / n, 4) for k in ("faces_0", "faces_1", "faces_2_plus")}
        cls.pop("used", None)
    sizes = {
        y: [s.face_fraction for s, lab in zip(stats, labels, strict=True) if lab == y and s.faces_found]
        for y in (0, 1)
    }
    return {
        "sampled_per_class": per_class,
        "by_class": summary,
        "size_shortcut": _size_shortcut(sizes[0], sizes[1]),
    }


def _size_shortcut(real: list[float], fake: list[float]) -> dict[str, Any]:
    if not real or not fake:
        return {"auc": None, "flagged": False}
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(fake, real).statistic / (len(fake) * len(real))
    folded = max(u, 1.0 - u)
    return {"auc": round(float(folded), 4), "flagged": bool(folded >= SIZE_SHORTCUT_AUC)}


def face_warnings(faces: dict[str, Any]) -> list[str]:
    out = []
    shortcut = faces.get("size_shortcut", {})
    if shortcut.get("flagged"):
        out.append(
            f"shortcut: face size alone separates real from fake (AUC {shortcut['auc']:.2f}); "
            "a model may learn the crop, not the manipulation"
        )
    for name, cls in faces.get("by_class", {}).items():
        share = cls.get("share", {})
        if share.get("faces_0", 0) >= 0.05:
            out.append(f"{share['faces_0']:.0%} of the sampled {name} images have no face the detector finds")
        if share.get("faces_2_plus", 0) >= 0.05:
            out.append(f"{share['faces_2_plus']:.0%} of the sampled {name} images have several faces")
    return out
