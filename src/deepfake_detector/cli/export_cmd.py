"""`deepfake-detector export`: a model bundle to ONNX (and int8) for fast, torch-free inference."""

from __future__ import annotations

from pathlib import Path

import typer

from deepfake_detector.cli.app import MODEL_HELP, app, build, fail
from deepfake_detector.options import ExportFormat
from deepfake_detector.options import ExportOptions as O


@app.command()
def export(
    model: str = typer.Argument(..., help=MODEL_HELP),
    fmt: ExportFormat = typer.Option(O.format, "--format", help="Export format."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output file (default: model.onnx beside model.json)."
    ),
    int8: bool = typer.Option(
        False,
        "--int8",
        help="Also write a static int8 (QDQ, per-channel) model.int8.onnx and report its accuracy.",
    ),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="Folder of calibration images for --int8 (default: the validation split of the data the "
        "run trained on, from data.json beside model.json; else random noise, with a warning).",
    ),
) -> None:
    """Export a trained model to ONNX (opset 17, dynamic batch, input 'input' NCHW float32, output
    'logit'), check it with onnx.checker and against PyTorch. `predict` then uses ONNX Runtime
    automatically.

    Example: deepfake-detector export runs/mobilenet --int8 --calib ../shared/data/dfdc/Validation
    """
    from rich.console import Console

    from deepfake_detector.commands import run_export
    from deepfake_detector.inference.export import ExportError
    from deepfake_detector.locate import ModelNotFound

    options = build(O, locals(), format=fmt)
    try:
        result = run_export(options)
    except (ModelNotFound, ExportError, ValueError) as exc:  # OutputError is a ValueError
        raise fail(str(exc)) from exc
    console = Console(stderr=True)
    path = result.path
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), matches PyTorch", highlight=False)
    report = result.int8
    if report is None:
        return
    console.print(f"wrote {report.path} ({report.path.stat().st_size / 1e6:.1f} MB)", highlight=False)
    line = (
        f"int8 vs fp32 on {report.n_images} calibration images ({report.calibration}): "
        f"{report.decision_agreement:.1%} same decisions, max |prob diff| {report.max_abs_prob_diff:.4f}"
    )
    if report.accuracy_fp32 is not None and report.accuracy_int8 is not None:
        line += (
            f"; accuracy fp32 {report.accuracy_fp32:.4f}, int8 {report.accuracy_int8:.4f} "
            f"(delta {report.accuracy_int8 - report.accuracy_fp32:+.4f})"
        )
    console.print(line, highlight=False, markup=False)
