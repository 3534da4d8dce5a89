"""`run_eda`: discover a dataset, scan every image once, and write report.html + summary.json."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepfake_detector.data.images import UnreadableImage
from deepfake_detector.data.manifest import Manifest, discover
from deepfake_detector.eda import figures, plots
from deepfake_detector.eda.checkpoint import ScanCheckpoint
from deepfake_detector.eda.duplicates import DEFAULT_NEAR_DISTANCE
from deepfake_detector.eda.faces import FACES_PER_CLASS, face_statistics, face_warnings
from deepfake_detector.eda.report import listed_groups, render_html, write_report
from deepfake_detector.eda.scan import scan_manifest
from deepfake_detector.eda.stats import ANALYSIS_SIZE, ChunkResult
from deepfake_detector.eda.summary import build_summary, class_means, records_by_class

SAMPLES_PER_CLASS = 8


def _scan_with_progress(
    manifest: Manifest,
    workers: int,
    show_progress: bool,
    checkpoint: ScanCheckpoint,
    done: ChunkResult | None,
) -> ChunkResult:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
    ) as progress:
        already = len(done.records) + len(done.failures) if done is not None else 0
        task = progress.add_task("scanning images", total=len(manifest), completed=already)
        return scan_manifest(
            manifest,
            workers=workers,
            on_progress=lambda n: progress.advance(task, n),
            done=done,
            on_chunk=checkpoint.add,
        )


def _paths(groups: list[dict[str, Any]]) -> list[list[str]]:
    return [group["paths"] for group in groups]


def _pictures(manifest: Manifest, scan: ChunkResult, summary: dict[str, Any], seed: int) -> dict[str, Any]:
    """Charts (data URIs) and thumbnails for the template."""
    by_class = records_by_class(manifest, scan.records)
    spectra, means = class_means(scan)
    pictures: dict[str, Any] = {
        "counts_chart": plots.counts_chart(summary["counts"]) if summary["counts"] else None,
        "property_chart": plots.property_histograms(by_class) if by_class else None,
        "spectrum_chart": plots.spectra(spectra) if spectra else None,
        "samples": figures.random_samples(manifest, by_class, SAMPLES_PER_CLASS, seed),
        "mean_images": figures.mean_images(means),
        "exact_examples": figures.duplicate_examples(
            manifest, _paths(listed_groups(summary["duplicates"], "exact"))
        ),
        "near_examples": figures.duplicate_examples(
            manifest, _paths(listed_groups(summary["duplicates"], "near"))
        ),
        "preprocessing": [],
        "preprocessing_note": "",
        "preprocessing_image": "",
    }
    if scan.records:
        train = [r for r in scan.records if manifest.samples[r.index].split == "train"] or scan.records
        example = manifest.samples[train[seed % len(train)].index].path
        try:
            pictures["preprocessing"], pictures["preprocessing_note"] = figures.preprocessing(example, seed)
            pictures["preprocessing_image"] = example
        except UnreadableImage as exc:  # changed on disk since the scan (a long or resumed run)
            pictures["preprocessing_note"] = f"Preprocessing example not shown: {exc}"
    return pictures


def run_eda(
    data: str | Path,
    out_dir: str | Path,
    *,
    sample: int | None = None,
    seed: int = 0,
    workers: int = 2,
    near_max_distance: int = DEFAULT_NEAR_DISTANCE,
    show_progress: bool = True,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    faces_per_class: int | None = FACES_PER_CLASS,
) -> dict[str, Any]:
    """Analyse the dataset under `data` and write `out_dir`/report.html and summary.json.

    The per-image results are checkpointed in `out_dir` as they come (see eda.checkpoint): with
    `resume`, an interrupted run's finished files are not analysed again. Without it, an interrupted
    scan in `out_dir` raises ScanCheckpointError rather than being overwritten.

    Raises DatasetError when `data` is not a recognisable dataset; bad image files never raise,
    they are listed under `unreadable`. Face statistics (eda/faces.py) run on a seeded sample of
    `faces_per_class` images per class (None: all; 0: skipped).
    """
    started = time.perf_counter()
    manifest = discover(data, seed=seed)
    if sample is not None:
        manifest = manifest.sample(sample, seed=seed)
    checkpoint = ScanCheckpoint(out_dir, manifest, ANALYSIS_SIZE)
    done = None
    if checkpoint.exists() and not resume:
        raise checkpoint.refuse_overwrite()
    if checkpoint.exists():
        done = checkpoint.load()
        n_done = len(done.records) + len(done.failures)
        if log:
            log(f"resumed: {n_done} of {len(manifest)} images scanned before, {len(manifest) - n_done} to go")
    else:
        if resume and log:
            log(f"nothing to resume in {out_dir}: scanning all {len(manifest)} images")
        checkpoint.start()
    try:
        scan = _scan_with_progress(manifest, workers, show_progress, checkpoint, done)
        checkpoint.commit()
    finally:
        checkpoint.close()
    options = {"sample": sample, "seed": seed, "workers": workers}
    summary = build_summary(manifest, scan, near_max_distance=near_max_distance, options=options)
    if faces_per_class != 0:
        summary["faces"] = face_statistics(manifest, faces_per_class, seed=seed, workers=workers)
        summary["warnings"] += face_warnings(summary["faces"])
    pictures = _pictures(manifest, scan, summary, seed)
    summary["runtime_s"] = round(time.perf_counter() - started, 2)
    write_report(out_dir, summary, render_html(summary, pictures))
    checkpoint.remove()
    return summary
