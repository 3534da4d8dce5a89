"""`deepfake-detector eda`: the dataset report (counts, properties, spectra, leakage)."""

from __future__ import annotations

from pathlib import Path

import typer

from deepfake_detector.cli.app import app, fail


@app.command()
def eda(
    data: Path = typer.Argument(
        ..., help="Dataset folder (Train/Validation/Test or Real/Fake) or a manifest CSV."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.html and summary.json."),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="Analyse at most N images per split and class (quick look)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed for the flat-folder split, --sample and the sample grid."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Decoding processes."),
    near_distance: int = typer.Option(
        4, "--near-distance", min=0, max=16, help="Max perceptual-hash Hamming distance for near duplicates."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run into the same --out: scan only the files it did not.",
    ),
) -> None:
    """Explore a dataset: counts, samples, image properties and shortcut risks, JPEG quality,
    colour, frequency spectra, unreadable files and duplicate leakage. Writes OUT/report.html and
    OUT/summary.json. Progress is checkpointed in OUT as it goes: a run that was stopped is
    continued with --resume.

    Example: deepfake-detector eda ../shared/data/dfdc --out eda-out --sample 500
    """
    from rich.console import Console

    from deepfake_detector.data.manifest import DatasetError

    try:
        from deepfake_detector.eda import run_eda
        from deepfake_detector.eda.checkpoint import ScanCheckpointError
    except ImportError as exc:  # imagehash (perceptual hashes) comes with the training extras
        raise fail(f"eda needs {exc.name}: pip install 'deepfake-detector[train]'") from exc

    console = Console(stderr=True)
    try:
        summary = run_eda(
            data,
            out,
            sample=sample,
            seed=seed,
            workers=workers,
            near_max_distance=near_distance,
            resume=resume,
            log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True),
        )
    except (DatasetError, ScanCheckpointError) as exc:
        raise fail(str(exc)) from exc
    for split, per_class in summary["counts"].items():
        console.print(f"{split:>5}: {per_class['real']} real, {per_class['fake']} fake")
    totals = summary["duplicates"]["totals"]
    console.print(
        f"unreadable: {len(summary['unreadable'])}; exact duplicate groups: {totals['exact_groups']} "
        f"({totals['exact_cross_split_groups']} across splits); near duplicate groups: "
        f"{totals['near_groups']} ({totals['near_cross_split_groups']} across splits)"
    )
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}  ({summary['runtime_s']} s)"
    )
