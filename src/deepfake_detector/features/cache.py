"""Encode a list of images once; keep the features on disk as .npy chunks (never pickle).

A cache entry is keyed by what determines its numbers: the data (a manifest digest, or a digest of
the paths and file sizes), the crop spec (a string naming how `crop_fn` makes the 224x224 crop)
and the encoder (`encoder.key`: encoder file + feature set). Chunks are written atomically as
they finish, so an interrupted run resumes where it stopped. A file that cannot be read or cropped
is not encoded: its row is NaN, `ok` is False and `errors` says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deepfake_detector.fileio import atomic_output, atomic_write_json

CACHE_FORMAT = 1
CROP_SIZE = 224
DEFAULT_CROP_KEY = f"load_image-{CROP_SIZE}"
CropFn = Callable[[str], np.ndarray]


class Encoder(Protocol):
    key: str
    dim: int

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass
class CachedFeatures:
    features: np.ndarray  # (n, dim) float32; NaN rows where ok is False
    ok: np.ndarray  # (n,) bool
    errors: dict[str, str]  # path -> reason, for every row that is not ok
    key: str
    folder: Path
    encoded: int  # images encoded by this call (0 on a full cache hit)


def default_crop(path: str) -> np.ndarray:
    from deepfake_detector.data.images import load_image

    return load_image(path, size=CROP_SIZE)


def paths_digest(paths: Sequence[str]) -> str:
    """Digest of the ordered paths and their file sizes (a missing file counts as size -1)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            size = os.path.getsize(p)
        except OSError:
            size = -1
        h.update(f"{p}\0{size}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def cache_key(data_key: str, crop_key: str, encoder_key: str) -> str:
    return hashlib.sha256(f"{CACHE_FORMAT}\n{data_key}\n{crop_key}\n{encoder_key}".encode()).hexdigest()


def encode_cached(
    paths: Sequence[str | Path],
    encoder: Encoder,
    cache_dir: str | Path,
    *,
    crop_fn: CropFn | None = None,
    crop_key: str | None = None,
    data_key: str | None = None,
    chunk_size: int = 256,
    decode_threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> CachedFeatures:
    """Features of `paths` in order, encoding only the chunks not already cached.

    `crop_fn(path) -> RGB uint8 (224, 224, 3)` defaults to a plain resize of the whole image;
    a custom crop_fn needs a `crop_key` naming it (it is part of the cache key). `data_key`
    (e.g. a manifest digest) replaces the digest of paths + sizes. `progress(n)` is called with
    the number of images finished per chunk (cached chunks included).
    """
    if crop_fn is not None and not crop_key:
        raise ValueError("a custom crop_fn needs a crop_key naming the crop spec (it keys the cache)")
    crop_fn, crop_key = crop_fn or default_crop, crop_key or DEFAULT_CROP_KEY
    paths = [str(p) for p in paths]
    key = cache_key(data_key or paths_digest(paths), crop_key, encoder.key)
    folder = Path(cache_dir) / key[:24]
    meta = {"format": CACHE_FORMAT, "n": len(paths), "dim": encoder.dim, "chunk_size": chunk_size}
    meta.update(
        {"key": key, "data_key": data_key or "paths+sizes", "crop_key": crop_key, "encoder": encoder.key}
    )
    _open_folder(folder, meta)
    starts = list(range(0, len(paths), chunk_size))
    chunks: list[np.ndarray] = []
    errors: dict[str, str] = {}
    encoded = 0
    with ThreadPoolExecutor(max(1, decode_threads)) as pool:
        for start in starts:
            part = paths[start : start + chunk_size]
            cached = _read_chunk(folder, start, len(part), encoder.dim)
            if cached is None:
                cached = _encode_chunk(part, encoder, crop_fn, pool)
                _write_chunk(folder, start, *cached)
                encoded += len(part) - len(cached[1])
            feats, chunk_errors = cached
            chunks.append(feats)
            errors.update({part[i]: reason for i, reason in chunk_errors.items()})
            if progress is not None:
                progress(len(part))
    features = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), np.float32)
    ok = np.ones(len(paths), bool)
    ok[[i for i, p in enumerate(paths) if p in errors]] = False
    return CachedFeatures(features, ok, errors, key, folder, encoded)


def _open_folder(folder: Path, meta: dict[str, Any]) -> None:
    """Create the entry, or check an existing one describes the same thing (else start it afresh)."""
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return
        except (OSError, json.JSONDecodeError):
            pass
        for stale in folder.glob("chunk-*"):
            stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta_path, meta)


def _chunk_paths(folder: Path, start: int) -> tuple[Path, Path]:
    return folder / f"chunk-{start:09d}.npy", folder / f"chunk-{start:09d}.errors.json"


def _read_chunk(folder: Path, start: int, n: int, dim: int) -> tuple[np.ndarray, dict[int, str]] | None:
    feats_path, errors_path = _chunk_paths(folder, start)
    if not (feats_path.is_file() and errors_path.is_file()):
        return None
    try:
        feats = np.load(feats_path, allow_pickle=False)
        errors = {int(k): str(v) for k, v in json.loads(errors_path.read_text()).items()}
    except (OSError, ValueError):  # a damaged chunk is encoded again
        return None
    if feats.shape != (n, dim) or feats.dtype != np.float32:
        return None
    return feats, errors


def _write_chunk(folder: Path, start: int, feats: np.ndarray, errors: dict[int, str]) -> None:
    feats_path, errors_path = _chunk_paths(folder, start)
    atomic_write_json(errors_path, {str(k): v for k, v in errors.items()})
    with atomic_output(feats_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, feats, allow_pickle=False)  # written last: its presence marks the chunk done


def _encode_chunk(
    part: list[str], encoder: Encoder, crop_fn: CropFn, pool: ThreadPoolExecutor
) -> tuple[np.ndarray, dict[int, str]]:
    crops: list[np.ndarray | None] = []
    errors: dict[int, str] = {}
    for i, result in enumerate(pool.map(lambda p: _safe_crop(crop_fn, p), part)):
        crop, reason = result
        crops.append(crop)
        if reason is not None:
            errors[i] = reason
    feats = np.full((len(part), encoder.dim), np.nan, dtype=np.float32)
    good = [i for i, c in enumerate(crops) if c is not None]
    if good:
        feats[good] = encoder.encode([crops[i] for i in good])  # type: ignore[misc]
    return feats, errors


def _safe_crop(crop_fn: CropFn, path: str) -> tuple[np.ndarray | None, str | None]:
    """(crop, None), or (None, reason) when the file cannot be read or has no crop."""
    try:
        crop = crop_fn(path)
    except (OSError, ValueError) as exc:  # UnreadableImage is a ValueError carrying the reason
        return None, getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if not (
        isinstance(crop, np.ndarray) and crop.dtype == np.uint8 and crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    ):
        shape = getattr(crop, "shape", None)
        raise ValueError(f"{path}: crop_fn must return RGB uint8 ({CROP_SIZE}, {CROP_SIZE}, 3), got {shape}")
    return crop, None
