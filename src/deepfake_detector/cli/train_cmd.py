"""`deepfake-detector train`."""

from __future__ import annotations

from pathlib import Path

import typer

from deepfake_detector.cli.app import app, fail


@app.command()
def train(
    data: str = typer.Argument(
        None, help="Dataset folder (Kaggle layout, Real/Fake folder) or CSV manifest."
    ),
    preset: str = typer.Option(
        "default", "--preset", "-p", help="Preset name (seed, default) or a YAML file."
    ),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory to create."),
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
) -> None:
    """Train a model on a dataset; writes config, metrics.csv, curves.png and model.safetensors/json."""
    from deepfake_detector.data import DatasetError
    from deepfake_detector.models import UntrustedWeights
    from deepfake_detector.training import ConfigError, RunError
    from deepfake_detector.training import train as run_training

    overrides: dict[str, object] = {
        "model": model,
        "epochs": epochs,
        "img_size": img_size,
        "batch_size": batch_size,
        "lr": lr,
        "pretrained": pretrained,
        "weights": weights,
        "trust_pickle": trust_pickle or None,
        "limit_per_class": limit_per_class,
        "cache_dir": cache_dir,
        "devices": _int_or_str(devices),
        "num_nodes": num_nodes,
        "strategy": strategy,
        "workers": workers,
    }
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = value
    try:
        result = run_training(
            data,
            preset=preset,
            out=resume or out,
            overrides=overrides,
            resume=resume is not None,
            progress=not quiet,
        )
    except (ConfigError, RunError, DatasetError, FileNotFoundError, UntrustedWeights) as exc:
        raise fail(str(exc)) from exc
    if result.global_rank:  # DDP: only rank 0 calibrates and reports; the others have nothing to say
        return
    spec = result.spec
    val = spec.metrics.get("val", {})
    typer.echo(
        f"run: {result.run_dir}  epochs: {result.epochs_completed}  val AUC: {val.get('roc_auc', float('nan')):.4f}  "
        f"val accuracy: {val.get('accuracy', float('nan')):.4f}  threshold: {spec.threshold:.3f}  "
        f"temperature: {spec.temperature:.3f}"
    )


def _int_or_str(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value
