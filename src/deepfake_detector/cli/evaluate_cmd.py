"""`deepfake-detector evaluate`: metrics, plots and an HTML report on one or more datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from deepfake_detector.cli.app import alias, app, build, fail, warn
from deepfake_detector.filelimits import READ_POLICY
from deepfake_detector.options import Engine, Faces
from deepfake_detector.options import EvaluateOptions as O


def _cell(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


@app.command()
def evaluate(
    model: str = typer.Argument(
        ..., help="A run directory, its model.json / model.safetensors / .onnx file, or 'default'."
    ),
    data: list[Path] = typer.Argument(
        ...,
        help="Dataset folders: Kaggle layout (Train/Validation/Test) or a folder with Real and/or Fake. "
        + READ_POLICY,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for metrics.json, <dataset>.json, report.html, plots/."
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        help="Split to evaluate (default: test): of a Kaggle layout, or of a flat or CSV dataset the model "
        "was trained on (cut by the seed training recorded).",
    ),
    robustness: bool = typer.Option(
        False, "--robustness", help="Also score under JPEG, down-scaling, blur and noise perturbations."
    ),
    batch_size: int = typer.Option(O.batch_size, "--batch-size", min=1, help="Images per forward pass."),
    workers: int = typer.Option(O.workers, "--workers", min=1, help="Decoding threads."),
    limit_per_class: int | None = typer.Option(
        None,
        "--limit-per-class",
        min=1,
        help="At most N images per class and dataset (seeded sample, for a quick look).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, hidden=True),
    engine: Engine = typer.Option(O.engine, "--engine", help="auto: ONNX Runtime when model.onnx exists."),
    device: str = typer.Option(O.device, "--device", help="cpu, cuda, cuda:N or auto (PyTorch on a GPU)."),
    faces: Faces = typer.Option(
        None,
        "--faces",
        help="How images are cut: auto, always or never (default auto, by the model's crop spec).",
    ),
) -> None:
    """Evaluate a model at its stored threshold and temperature (nothing is tuned on these data).

    Images the model trained or calibrated on (same path or bytes) are left out and counted.

    Example: deepfake-detector evaluate default ../shared/data/dfdc ../shared/data/stylegan-ffhq -o eval
    """
    from rich.console import Console

    from deepfake_detector.commands import run_evaluate
    from deepfake_detector.evaluation.holdout import describe_overlap
    from deepfake_detector.locate import ModelNotFound

    limit_per_class = alias(limit_per_class, limit, "--limit", "--limit-per-class")
    options = build(O, locals(), datasets=list(data))
    console = Console(stderr=True)
    progress, on_progress = _progress(console)
    try:
        with progress:
            result = run_evaluate(options, on_progress=on_progress)
    except (ModelNotFound, ValueError) as exc:  # DatasetError and OutputError are ValueErrors
        raise fail(str(exc)) from exc
    _print_metrics(model, result.spec, result.metrics)
    if robustness:
        _print_robustness(result.metrics)
    for name, metrics in result.metrics.items():
        overlap = metrics.get("training_overlap") or {}
        if overlap.get("split"):
            console.print(f"{name}: {overlap['split']}", markup=False)
        console.print(describe_overlap(name, overlap), markup=False)
        if metrics["n_unreadable"]:
            warn(f"{name}: {metrics['n_unreadable']} unreadable files skipped (listed in {out / name}.json)")
    console.print(f"metrics: {out / 'metrics.json'}\nreport: {out / 'report.html'}", markup=False)


def _progress(console: Any) -> tuple[Any, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        key = stage.split(" (")[0]  # "dfdc: robustness (jpeg 90)" updates the "dfdc: robustness" bar
        if key not in tasks:
            tasks[key] = progress.add_task(stage, total=total)
        progress.update(tasks[key], description=stage, completed=done, total=total)

    return progress, on_progress


def _print_metrics(model: str, spec: Any, summary: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    trained_on = ", ".join(spec.trained_on) or "not recorded"
    table = Table(
        title=escape(
            f"{model} ({spec.architecture}, threshold {spec.threshold:.3f}, T {spec.temperature:.3f}; "
            f"trained on {trained_on})"
        )
    )
    table.add_column("metric")
    for name, metrics in summary.items():
        table.add_column(
            escape(name) if metrics["seen_in_training"] else f"{escape(name)}\n[yellow](unseen)[/]",
            justify="right",
        )
    from deepfake_detector.evaluation.report import TABLE_COLUMNS

    for key, title, f in TABLE_COLUMNS:
        table.add_row(title, *(_cell(metrics.get(key), f) for metrics in summary.values()))
    Console().print(table)


def _print_robustness(summary: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ROC-AUC / accuracy under perturbations")
    table.add_column("perturbation")
    table.add_column("severity", justify="right")
    for name in summary:
        table.add_column(name, justify="right")
    table.add_row("none", "", *(_pair(m) for m in summary.values()))
    first = next(iter(summary.values()))
    for perturbation, by_severity in first["robustness"].items():
        for severity in by_severity:
            table.add_row(
                perturbation,
                severity,
                *(_pair(m["robustness"][perturbation][severity]) for m in summary.values()),
            )
    Console().print(table)


def _pair(metrics: dict[str, Any]) -> str:
    return f"{_cell(metrics['roc_auc'], '.4f')} / {_cell(metrics['accuracy'], '.4f')}"
