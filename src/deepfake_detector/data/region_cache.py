"""Every image of a dataset decoded and cut once (data/crop.py), cached on disk for the next run.

Training, evaluation and feature extraction read a dataset through `cached_regions`: one
size x size uint8 region per image (its largest face cut by the model's crop spec, or the whole
image), in manifest order, plus what face finding saw in each image. The cache is keyed by the
manifest's digest, the size, the crop spec and the face mode, so epochs do not re-detect faces
and a second run with the same data and spec starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from deepfake_detector.data.crop import CropSpec, FacesMode, RegionStats, dataset_region
from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.data.manifest import Manifest
from deepfake_detector.fileio import atomic_write_json

CHUNK = 512  # images per progress step


@dataclass
class CachedRegions:
    arrays: np.ndarray  # (N, S, S, 3) uint8; unreadable files stay black
    failed: list[UnreadableImage] = field(default_factory=list)
    stats: list[RegionStats] = field(default_factory=list)  # one per image (unreadable: 0 faces)


def cut_all(
    paths: Sequence[str],
    size: int,
    crop: CropSpec | None = None,
    faces: FacesMode = "auto",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    out: np.ndarray | None = None,
) -> CachedRegions:
    """Decode `paths` and cut one region each into an (N, S, S, 3) uint8 array (see dataset_region);
    crop None decodes each whole image straight at the size (JPEG DCT scaling), as older models were trained."""
    arrays = out if out is not None else np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    stats: list[RegionStats] = [RegionStats(0, 0.0, "unreadable")] * len(paths)
    errors: list[UnreadableImage] = []

    def one(i: int) -> UnreadableImage | None:
        try:
            if crop is None:
                arrays[i] = load_image(paths[i], size=size)
                stats[i] = RegionStats(0, 0.0, "whole image")
            else:
                arrays[i], stats[i] = dataset_region(load_image(paths[i]), crop, size, faces)
        except UnreadableImage as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), CHUNK):
            chunk = range(start, min(start + CHUNK, len(paths)))
            errors.extend(e for e in pool.map(one, chunk) if e is not None)
            if progress:
                progress(len(chunk))
    return CachedRegions(arrays, errors, stats)


def cache_key(manifest: Manifest, size: int, crop: CropSpec | None, faces: FacesMode) -> str:
    text = f"{manifest.digest()}:{size}:{crop.key() if crop else 'whole'}:{faces if crop else ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_regions(
    manifest: Manifest,
    size: int,
    cache_dir: str | Path | None,
    crop: CropSpec | None = None,
    faces: FacesMode = "auto",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> CachedRegions:
    """`cut_all` for a manifest through an on-disk cache (memory only when cache_dir is None).

    The .npy is memory-mapped; a .json beside it lists the unreadable files and the face stats,
    written before the .npy is moved into place, so a cache that has the .npy has both."""
    if not cache_dir:
        return cut_all(manifest.paths, size, crop, faces, workers, progress)
    key = cache_key(manifest, size, crop, faces)
    path = Path(cache_dir) / f"regions-{key}-{size}px.npy"
    listing = path.with_suffix(".json")
    if path.is_file() and listing.is_file():
        recorded = json.loads(listing.read_text())
        failed = [UnreadableImage(p, reason) for p, reason in recorded["unreadable"]]
        stats = [RegionStats(**row) for row in recorded["stats"]]
        return CachedRegions(np.load(path, mmap_mode="r"), failed, stats)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    arrays = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(manifest), size, size, 3))
    result = cut_all(manifest.paths, size, crop, faces, workers, progress, out=arrays)
    arrays.flush()
    del arrays
    atomic_write_json(
        listing,
        {
            "unreadable": [[e.path, e.reason] for e in result.failed],
            "stats": [asdict(s) for s in result.stats],
            "crop": crop.to_dict() if crop else None,
            "faces": faces,
        },
    )
    os.replace(tmp, path)
    return CachedRegions(np.load(path, mmap_mode="r"), result.failed, result.stats)
