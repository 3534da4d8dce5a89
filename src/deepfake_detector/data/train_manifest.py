"""What a model was trained on, file by file: `train_manifest.json.gz` beside its model.json.

Written when training starts (training/fit.py, training/heads.py): the seeded split that cut any
flat or CSV dataset, and per source its resolved root, layout and every train and validation file
as (relative path, label, split, bytes, SHA-256 of the bytes). Validation files count as training
data here: the threshold and temperature were fitted on them. Evaluation reads it back
(evaluation/holdout.py) to score only what training held out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.data.manifest import DEFAULT_SPLIT_FRACTIONS, Manifest
from deepfake_detector.fileio import atomic_write_bytes

TRAIN_MANIFEST = "train_manifest.json.gz"
FORMAT = 1
COLUMNS = ("relpath", "label", "split", "size", "sha256")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a regular file's bytes; "" for anything else or an unreadable file (matched by path
    only). Opened non-blocking and checked before reading: a FIFO in a dataset must not hang this."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return ""
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return ""
            digest = hashlib.sha256()
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
            return digest.hexdigest()
    except OSError:
        return ""


def hash_files(paths: Sequence[str], workers: int | None = None) -> list[str]:
    """file_sha256 of every path, in order; hashlib releases the GIL, so threads read in parallel."""
    if not paths:
        return []
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(file_sha256, paths, chunksize=64))


def split_record(seed: int, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> dict[str, Any]:
    """How a flat folder or a CSV without a split column was cut into train/val/test (data.json too)."""
    return {"seed": int(seed), "fractions": [float(f) for f in fractions]}


@dataclass(frozen=True)
class TrainedSource:
    name: str  # the dataset's folder name, as in model.json trained_on
    root: str  # resolved when training started
    layout: str  # splits, flat or csv (data.manifest.discover)


@dataclass(frozen=True)
class TrainedFile:
    source: str
    path: str  # root joined with the relative path
    relpath: str
    label: int
    split: str
    size: int
    sha256: str


@dataclass
class TrainManifest:
    """The recorded training files and the split that held out the rest."""

    seed: int
    fractions: tuple[float, float, float]
    sources: list[TrainedSource]
    files: list[TrainedFile]


def _source_entry(name: str, manifest: Manifest, workers: int | None) -> dict[str, Any]:
    kept = [s for s in manifest if s.split in ("train", "val")]
    hashes = hash_files([s.path for s in kept], workers)
    rows = [
        [manifest.relpath(s).replace(os.sep, "/"), s.label, s.split, s.size, digest]
        for s, digest in zip(kept, hashes, strict=True)
    ]
    return {"name": name, "root": os.path.realpath(manifest.root), "layout": manifest.layout, "files": rows}


def write_train_manifest(
    run_dir: str | Path,
    sources: Iterable[tuple[str, Manifest]],
    seed: int,
    fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    workers: int | None = None,
) -> Path:
    """RUN/train_manifest.json.gz from (source name, manifest) pairs; only their train/val files."""
    payload = {
        "format": FORMAT,
        "split": split_record(seed, fractions),
        "columns": list(COLUMNS),
        "sources": [_source_entry(name, manifest, workers) for name, manifest in sources],
    }
    path = Path(run_dir) / TRAIN_MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    # surrogateescape: a file name that is not UTF-8 is stored as its bytes on disk
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")
    atomic_write_bytes(path, gzip.compress(data, mtime=0))  # mtime 0: same training data, same bytes
    return path


def read_train_manifest(run_dir: str | Path | None) -> TrainManifest | None:
    """The recorded training files of a model folder; None when it has none (or it is unreadable)."""
    if run_dir is None:
        return None
    path = Path(run_dir) / TRAIN_MANIFEST
    try:
        with gzip.open(path, "rb") as fh:
            payload = json.loads(fh.read().decode("utf-8", "surrogateescape"))
        split = payload["split"]
        sources, files = [], []
        for entry in payload["sources"]:
            sources.append(TrainedSource(entry["name"], entry["root"], entry["layout"]))
            for rel, label, name, size, digest in entry["files"]:
                full = os.path.normpath(os.path.join(entry["root"], rel))
                files.append(TrainedFile(entry["name"], full, rel, int(label), name, int(size), digest))
        fractions = tuple(float(f) for f in split["fractions"])
        return TrainManifest(int(split["seed"]), fractions, sources, files)  # type: ignore[arg-type]
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return None
