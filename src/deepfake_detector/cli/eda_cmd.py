"""`deepfake-detector eda`: the dataset report (counts, properties, spectra, leakage)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from deepfake_detector.cli.app import alias, app, build, fail, warn
from deepfake_detector.filelimits import READ_POLICY
from deepfake_detector.options import EdaOptions as O

if TYPE_CHECKING:
    from rich.console import Console


@app.command()
def eda(
    data: Path = typer.Argument(
        ..., help="Dataset folder (Train/Validation/Test or Real/Fake) or a manifest CSV. " + READ_POLICY
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.html and summary.json."),
    limit_per_class: int | None = typer.Option(
        None, "--limit-per-class", min=1, help="Analyse at most N images per split and class (quick look)."
    ),
    sample: int | None = typer.Option(None, "--sample", min=1, hidden=True),
    seed: int = typer.Option(
        O.seed, "--seed", help="Seed for the flat-folder split, the sample and the grid."
    ),
    workers: int = typer.Option(O.workers, "--workers", min=1, help="Decoding processes."),
    near_distance: int = typer.Option(
        O.near_distance,
        "--near-distance",
        min=0,
        max=16,
        help="Max perceptual-hash Hamming distance for near duplicates.",
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

    Example: deepfake-detector eda ../shared/data/dfdc --out eda-out --limit-per-class 500
    """
    from rich.console import Console

    from deepfake_detector.commands import run_eda
    from deepfake_detector.data.manifest import DatasetError

    limit_per_class = alias(limit_per_class, sample, "--sample", "--limit-per-class")
    options = build(O, locals())
    console = Console(stderr=True)
    try:
        summary = run_eda(
            options, log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True)
        )
    except ImportError as exc:  # imagehash (perceptual hashes) comes with the training extras
        raise fail(f"eda needs {exc.name}: pip install 'deepfake-detector[train]'") from exc
    except (DatasetError, ValueError) as exc:  # ScanCheckpointError and OutputError are ValueErrors
        raise fail(str(exc)) from exc
    _print_summary(console, summary, out)


def _print_summary(console: Console, summary: dict[str, Any], out: Path) -> None:
    print_ = console.print
    for split, per_class in summary["counts"].items():
        print_(f"{split:>5}: {per_class['real']} real, {per_class['fake']} fake")
    totals = summary["duplicates"]["totals"]
    print_(
        f"unreadable: {len(summary['unreadable'])}; exact duplicate groups: {totals['exact_groups']} "
        f"({totals['exact_cross_split_groups']} across splits); near duplicate groups: "
        f"{totals['near_groups']} ({totals['near_cross_split_groups']} across splits)"
    )
    for warning in summary["warnings"]:
        warn(warning)
    print_(
        f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}  ({summary['runtime_s']} s)",
        markup=False,
        highlight=False,
    )
