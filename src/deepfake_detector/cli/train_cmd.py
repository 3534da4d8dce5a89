"""`deepfake-detector train`."""

from __future__ import annotations

from pathlib import Path

import typer

from deepfake_detector.cli.app import app, build, fail
from deepfake_detector.filelimits import READ_POLICY
from deepfake_detector.options import Faces
from deepfake_detector.options import TrainOptions as O


@app.command()
def train(
    data: list[str] = typer.Argument(
        None,
        help="Dataset folder (Kaggle layout, Real/Fake folder) or CSV manifest; several for the CLIP "
        "presets (default, clip-linear, clip-mlp), which train on all of them at once. " + READ_POLICY,
    ),
    preset: str = typer.Option(
        O.preset,
        "--preset",
        "-p",
        help="Preset (default, fast, seed, clip-linear, clip-mlp, clip-gend) or a YAML file.",
    ),
    out: Path = typer.Option(O.out, "--out", "-o", help="Run directory to create."),
    resume: Path = typer.Option(None, "--resume", help="Continue the interrupted run in this directory."),
    model: str = typer.Option(None, help="Override the preset's model (e.g. mobilenetv2, timm:resnet18)."),
    epochs: int = typer.Option(None, help="Override the number of epochs."),
    img_size: int = typer.Option(None, help="Override the input size in pixels."),
    batch_size: int = typer.Option(None, help="Override the batch size."),
    lr: float = typer.Option(None, help="Override the learning rate."),
    pretrained: bool = typer.Option(
        None, "--pretrained/--no-pretrained", help="Start from ImageNet weights."
    ),
    weights: str = typer.Option(None, help="Local pretrained-weights file (safetensors) for the backbone."),
    trust_pickle: bool = typer.Option(
        False,
        "--trust-pickle",
        help="Allow a pickle-based --weights file (.pth/.pt): only for files from a source you trust.",
    ),
    limit_per_class: int = typer.Option(None, help="Use at most N images per split and class (quick runs)."),
    cache_dir: str = typer.Option(None, help="Keep resized images in this folder between runs."),
    devices: str = typer.Option(None, help="Devices per node (e.g. 2 for two processes)."),
    num_nodes: int = typer.Option(None, help="Number of machines."),
    strategy: str = typer.Option(None, help="Lightning strategy, e.g. ddp."),
    workers: int = typer.Option(None, help="Data loader worker processes."),
    set_: list[str] = typer.Option([], "--set", help="Any other preset field: --set augment.jpeg_p=0.5"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    faces: Faces = typer.Option(
        None, "--faces", help="How training images are cut: auto, always or never (default: the preset's)."
    ),
) -> None:
    """Train a model on a dataset; writes config, metrics.csv, curves.png and model.safetensors/json."""
    from deepfake_detector.commands import run_train
    from deepfake_detector.data import DatasetError
    from deepfake_detector.models import UntrustedWeights
    from deepfake_detector.training import ConfigError, RunError

    options = build(O, locals(), data=list(data) if data else None, settings=list(set_), progress=not quiet)
    try:
        summary = run_train(options)
    except (ConfigError, RunError, DatasetError, FileNotFoundError, UntrustedWeights, ValueError) as exc:
        raise fail(str(exc)) from exc
    if summary is not None:  # None: a DDP rank other than 0, which has nothing to report
        typer.echo(summary.describe())
