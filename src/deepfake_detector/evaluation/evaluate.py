"""Score a model on one or more datasets and write metrics, per-image predictions and the report.

The model arrives as an argument (anything with `.spec` and `.predict_logits`), so this layer
never imports the inference layer; the threshold and temperature come from the model's spec and
nothing here tunes them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.data.manifest import SPLIT_ALIASES, DatasetError, Manifest
from deepfake_detector.evaluation.holdout import Overlap, TrainingData, held_out, load_training_data
from deepfake_detector.evaluation.metrics import compute_metrics, verdict_metrics
from deepfake_detector.evaluation.robustness import PERTURBATIONS, robustness_table
from deepfake_detector.fileio import atomic_write_json
from deepfake_detector.spec import ModelSpec

Decoded = Iterator[tuple[int, "np.ndarray | UnreadableImage"]]
Decoder = Callable[[Sequence[str], int, int], Decoded]
ProgressCallback = Callable[[str, int, int], None]
RESERVED_NAMES = frozenset({"metrics", "report", "plots"})  # output files of their own


class Scorer(Protocol):
    """What evaluation needs from a model: its spec and raw logits for RGB uint8 images of any size."""

    spec: ModelSpec

    def predict_logits(self, images: list[np.ndarray]) -> np.ndarray: ...


@dataclass
class DatasetResult:
    name: str
    root: str
    split: str
    seen_in_training: bool
    paths: list[str]  # the scored (readable) images, in manifest order
    labels: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    metrics: dict[str, Any]
    unreadable: list[dict[str, str]] = field(default_factory=list)
    robustness: dict[str, dict[str, dict[str, Any]]] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    overlap: Overlap = field(default_factory=lambda: Overlap("not checked"))  # images left out

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "root": self.root,
            "split": self.split,
            "seen_in_training": self.seen_in_training,
            "metrics": self.metrics,
            "robustness": self.robustness,
            "seconds": self.seconds,
            "unreadable": self.unreadable,
            "training_overlap": self.overlap.to_json(),
            "predictions": [
                {"path": path, "label": int(label), "prob_fake": float(prob)}
                for path, label, prob in zip(self.paths, self.labels, self.probs, strict=True)
            ],
        }


def dataset_name(root: str | Path) -> str:
    """A dataset's name is its folder's name; for a split folder (dfdc/Test) the folder above it."""
    path = Path(os.path.abspath(str(root)))
    if path.name.lower() in SPLIT_ALIASES and path.parent.name:
        path = path.parent
    return path.name or "dataset"


def seen_in_training(name: str, trained_on: Iterable[str]) -> bool:
    """Whether the model's spec lists this dataset (by folder name) among its training data."""
    return any(dataset_name(entry) == name for entry in trained_on if str(entry).strip())


def unique_file_stem(name: str, taken: set[str]) -> str:
    """A file-system-safe name for DIR/<name>.json, distinct from the others and from metrics/report."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"
    candidate, n = stem, 2
    while candidate.lower() in taken or candidate.lower() in RESERVED_NAMES:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def decode_sequentially(paths: Sequence[str], size: int, workers: int = 0) -> Decoded:
    """The plain decoder used when none is given: one image after another, errors yielded, not raised."""
    for index, path in enumerate(paths):
        try:
            yield index, load_image(path, size=size)
        except UnreadableImage as exc:
            yield index, exc


def score_paths(
    scorer: Scorer,
    paths: Sequence[str],
    *,
    decode: Decoder,
    batch_size: int,
    workers: int,
    keep_images: bool,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]], dict[int, np.ndarray]]:
    """Raw logits per path, which paths were decoded and scored, the unreadable files (path, reason),
    and the decoded images by index if kept."""
    logits = np.full(len(paths), np.nan)
    scored = np.zeros(len(paths), dtype=bool)
    unreadable: list[dict[str, str]] = []
    kept: dict[int, np.ndarray] = {}
    pending_index: list[int] = []
    pending_image: list[np.ndarray] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if pending_image:
            logits[pending_index] = np.asarray(
                scorer.predict_logits(pending_image), dtype=np.float64
            ).reshape(-1)
            done += len(pending_image)
            pending_index.clear()
            pending_image.clear()
            if on_progress is not None:
                on_progress(done + len(unreadable))

    for index, item in decode(paths, scorer.spec.img_size, workers):
        if isinstance(item, UnreadableImage):
            unreadable.append({"path": str(paths[index]), "reason": item.reason})
            continue
        scored[index] = True
        pending_index.append(index)
        pending_image.append(item)
        if keep_images:
            kept[index] = item
        if len(pending_image) >= batch_size:
            flush()
    flush()
    return logits, scored, unreadable, kept


def load_datasets(
    datasets: Sequence[str | Path],
    split: str | None = None,
    limit: int | None = None,
    training: TrainingData | None = None,
) -> list[tuple[str, Manifest, Overlap]]:
    """(name, manifest, what was left out) for every dataset, all checked before any scoring starts.

    Only what the model's training held out is kept (evaluation/holdout.py); `limit` then samples."""
    if not datasets:
        raise DatasetError("no dataset given")
    training = training or TrainingData()
    loaded = []
    for root in datasets:
        manifest, overlap = held_out(root, split, training)
        if limit is not None:
            manifest = manifest.sample(limit, seed=0)
        loaded.append((dataset_name(root), manifest, overlap))
    return loaded


def evaluate_dataset(
    scorer: Scorer,
    name: str,
    manifest: Manifest,
    *,
    split: str,
    robustness: bool = False,
    batch_size: int = 64,
    workers: int = 2,
    decode: Decoder | None = None,
    on_progress: ProgressCallback | None = None,
    overlap: Overlap | None = None,
) -> DatasetResult:
    """Score one dataset at the model's stored threshold (and, if asked, under every perturbation).

    `overlap`: the images already left out as training data (load_datasets), for the report."""
    spec = scorer.spec
    paths = manifest.paths
    all_labels = manifest.labels
    started = time.perf_counter()
    logits, readable, unreadable, images = score_paths(
        scorer,
        paths,
        decode=decode or decode_sequentially,
        batch_size=batch_size,
        workers=workers,
        keep_images=robustness,
        on_progress=None
        if on_progress is None
        else lambda done: on_progress(f"{name}: scoring", done, len(paths)),
    )
    seconds = {"scoring": round(time.perf_counter() - started, 3)}
    if not readable.any():
        raise DatasetError(f"{manifest.root}: none of its {len(paths)} images could be read")
    if not np.isfinite(logits[readable]).all():
        raise ValueError(f"the model produced NaN or infinite logits on {manifest.root}")
    labels = all_labels[readable]
    probs = spec.probability(logits[readable])
    result = DatasetResult(
        name=name,
        root=manifest.root,
        split=split,
        seen_in_training=seen_in_training(dataset_name(manifest.root), spec.trained_on),
        paths=[p for p, ok in zip(paths, readable, strict=True) if ok],
        labels=labels,
        logits=logits[readable],
        probs=probs,
        metrics={
            **compute_metrics(labels, probs, spec.threshold),
            **verdict_metrics(labels, probs, spec.rule),
        },
        unreadable=sorted(unreadable, key=lambda row: row["path"]),
        seconds=seconds,
        overlap=overlap or Overlap("not checked"),
    )
    if robustness:
        order = np.flatnonzero(readable)
        kept = [images[i] for i in order]
        steps = sum(len(p.severities) for p in PERTURBATIONS.values())
        step = 0

        def on_step(perturbation: str, severity: float) -> None:
            nonlocal step
            if on_progress is not None:
                on_progress(f"{name}: robustness ({perturbation} {severity:g})", step, steps)
            step += 1

        started = time.perf_counter()
        result.robustness = robustness_table(
            lambda batch: spec.probability(scorer.predict_logits(batch)),
            kept,
            labels,
            spec.threshold,
            batch_size=batch_size,
            on_step=on_step,
        )
        seconds["robustness"] = round(time.perf_counter() - started, 3)
        if on_progress is not None:
            on_progress(f"{name}: robustness", steps, steps)
    return result


def evaluate_datasets(
    scorer: Scorer,
    datasets: Sequence[str | Path],
    out_dir: str | Path,
    split: str | None = None,
    robustness: bool = False,
    *,
    batch_size: int = 64,
    workers: int = 2,
    limit: int | None = None,
    decode: Decoder | None = None,
    on_progress: ProgressCallback | None = None,
    model_ref: str = "",
    write_report: bool = True,
    training: TrainingData | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate `scorer` on each dataset root; write DIR/metrics.json, DIR/<name>.json, DIR/report.html.

    A dataset is a Kaggle-layout root (its `split`, default test) or a folder with Real and/or Fake.
    `limit` keeps at most that many images per class (a seeded random sample). `decode(paths, size,
    workers)` yields (index, image or UnreadableImage); by default images are decoded one by one.
    `training` (default: read from the scorer's `folder`, see evaluation/holdout.py) says which
    images the model trained or calibrated on: they are left out and counted.
    Returns what metrics.json holds: {dataset name: metrics + n_unreadable, seen_in_training,
    training_overlap (+ robustness when asked)}.
    """
    out = Path(out_dir)
    if training is None:
        training = load_training_data(getattr(scorer, "folder", None))
    loaded = load_datasets(datasets, split, limit, training)
    results: list[DatasetResult] = []
    taken: set[str] = set()
    summary: dict[str, dict[str, Any]] = {}
    for name, manifest, overlap in loaded:
        stem = unique_file_stem(name, taken)
        result = evaluate_dataset(
            scorer,
            stem,
            manifest,
            split=split or "test",
            robustness=robustness,
            batch_size=batch_size,
            workers=workers,
            decode=decode,
            on_progress=on_progress,
            overlap=overlap,
        )
        atomic_write_json(out / f"{stem}.json", result.to_json())
        summary[stem] = {
            **result.metrics,
            "n_unreadable": len(result.unreadable),
            "seen_in_training": result.seen_in_training,
            "training_overlap": overlap.to_json(full=False),
        }
        if robustness:
            summary[stem]["robustness"] = result.robustness
        results.append(result)
    atomic_write_json(out / "metrics.json", summary)
    if write_report:
        from deepfake_detector.evaluation.report import write_report

        write_report(out, results, scorer.spec, model_ref=model_ref)
    return summary
