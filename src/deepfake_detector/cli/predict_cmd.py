"""`deepfake-detector predict`: score image and video files, folders, globs or paths from stdin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from deepfake_detector.cli.app import BAND_HELP, MODEL_HELP, THRESHOLD_HELP, app, build, fail, warn
from deepfake_detector.filelimits import READ_POLICY
from deepfake_detector.options import Aggregate, Engine, Faces, OutputFormat
from deepfake_detector.options import PredictOptions as P

OUT_HELP = (
    "Write results to this file instead of stdout (never over an input, nor over a file that is not an "
    "earlier results file)."
)
FACES_HELP = (
    "auto: detect faces except in images that already are face crops (square-ish, <= 512 px); "
    "always: detect faces in every image; never: score each whole image."
)


@app.command()
def predict(
    paths: list[str] = typer.Argument(
        ...,
        help="Image or video files, folders (searched recursively), glob patterns, or - to read paths from stdin. "
        + READ_POLICY,
    ),
    model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
    threshold: float | None = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    uncertain_band: float | None = typer.Option(None, "--uncertain-band", help=BAND_HELP),
    fmt: OutputFormat = typer.Option(P.format, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help=OUT_HELP),
    faces: Faces = typer.Option(P.faces, "--faces", help=FACES_HELP),
    heatmap: Path | None = typer.Option(
        None,
        "--heatmap",
        help="Folder for Grad-CAM overlays per face and an index.html page (needs PyTorch).",
    ),
    save: Path | None = typer.Option(
        None, "--save", help="Folder for a copy of each image with its faces boxed and labelled (.jpg)."
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Folder for a summary page (index.html): counts, a P(fake) histogram, the most suspicious images.",
    ),
    batch_size: int = typer.Option(P.batch_size, "--batch-size", min=1, help="Images per inference batch."),
    workers: int = typer.Option(P.workers, "--workers", min=1, help="Threads decoding images in parallel."),
    engine: Engine = typer.Option(
        P.engine, "--engine", help="auto: ONNX Runtime when model.onnx exists, else PyTorch."
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads (ONNX default 2)."),
    device: str = typer.Option(P.device, "--device", help="cpu, cuda, cuda:N or auto (PyTorch on a GPU)."),
    resume: bool = typer.Option(
        False, "--resume", help="With --format jsonl --out F: skip paths already in F and append the rest."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Videos: frames to score, spread uniformly over the video (default 32)."
    ),
    every: int | None = typer.Option(
        None, "--every", min=1, help="Videos: score every K-th frame instead of --frames."
    ),
    aggregate: Aggregate = typer.Option(
        P.aggregate,
        "--aggregate",
        help="Videos: per-track score. confident: the mean of the most suspicious quarter of the frames "
        "when they all look fake, else of the surest-real quarter; mean: the mean of all frames.",
    ),
    video_out: Path | None = typer.Option(
        None,
        "--video-out",
        help="Videos: folder for each video's contact sheet (<name>-<hash>.frames.png) and timeline plot "
        "(.timeline.png); default: the --heatmap folder when given, else none are written.",
    ),
) -> None:
    """Tell whether images are real or deepfakes: one row per image with label (fake, real or
    uncertain), P(fake), confidence (the probability of the label), threshold, faces and any error.
    Labels: fake at P(fake) >= threshold + band, real below threshold - band, uncertain between,
    and never a label its own probability contradicts (fake needs P(fake) > 0.5, real < 0.5).
    Exit code 0 when every input was read, 1 when some could not be (or matched no file), 2 when
    none could.

    A video (mp4, mov, avi, webm, mkv) is one row too: faces are found in sampled frames, tracked,
    scored and aggregated; json/jsonl add its tracks, key frames and timeline.

    Example: deepfake-detector predict photos/ --format csv --out results.csv
    Example: deepfake-detector predict clip.mp4 --every 10 --video-out reports/ --format json
    """
    from deepfake_detector.inference.batch_run import run_predict
    from deepfake_detector.locate import ModelNotFound

    options = build(P, locals(), format=fmt)
    try:
        summary = run_predict(model, paths, options)
    except (ModelNotFound, ValueError, RuntimeError) as exc:  # OutputError and NoInput are ValueErrors
        raise fail(str(exc)) from exc
    _say_where(summary, options)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def _say_where(summary: Any, options: P) -> None:
    """On stderr: unmatched inputs, the one-line summary, what the model detects, where pictures went."""
    from rich.console import Console

    console = Console(stderr=True)
    for item, reason in summary.unmatched:
        warn(f"{item}: {reason}")
    lines = [summary.describe(), summary.detects]
    if summary.files:
        if options.heatmap is not None:
            lines.append(f"heatmaps: {options.heatmap / 'index.html'}")
        if options.save is not None:
            lines.append(f"annotated copies: {options.save}")
        if options.report is not None:
            lines.append(f"summary page: {options.report / 'index.html'}")
    pictures = options.video_out or options.heatmap or options.save
    if pictures is not None and summary.videos:
        lines.append(f"video contact sheets and timelines: {pictures}")
    for line in lines:
        if line:
            console.print(line, highlight=False, markup=False)
