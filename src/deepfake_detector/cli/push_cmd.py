"""`deepfake-detector push`: a trained model to the Hugging Face Hub."""

from __future__ import annotations

import typer

from deepfake_detector.cli.app import app, build, fail
from deepfake_detector.options import PushOptions as O


@app.command()
def push(
    run: str = typer.Argument(..., help="A finished model folder (a train run), or a packaged model name."),
    repo: str = typer.Argument(..., help="The Hub repository, owner/name (created if missing)."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    revision: str | None = typer.Option(
        None, "--revision", "--branch", help="Branch to push to (made from main if missing; default main)."
    ),
    message: str | None = typer.Option(None, "--message", "-m", help="Commit message."),
    license: str = typer.Option(
        O.license,
        "--license",
        help="Licence in README.md's front matter (e.g. mit); 'other' points at the card's licence "
        "section, since the weights' terms depend on the training data's.",
    ),
) -> None:
    """Upload a model: model.json, weights (*.safetensors, head and domain files, model.onnx),
    config.yaml, data.json (local paths cut to folder names) and MODEL_CARD.md, also as README.md
    with the Hub's model-card front matter. A fused model's CNN goes along in cnn/. Never
    checkpoints or pickles. Log in first (`hf auth login` or HF_TOKEN).

    DEEPFAKE_DETECTOR_HUB_DIR=/folder pushes to a file-based stand-in there instead (for tests and
    air-gapped mirrors); hf:// references then read from it too.

    Example: deepfake-detector push runs/mine me/deepfake-detector, then predict --model hf://me/deepfake-detector
    """
    from deepfake_detector.commands import run_push
    from deepfake_detector.hub import HubError

    options = build(O, locals())
    try:
        result = run_push(options)
    except HubError as exc:
        raise fail(str(exc)) from exc
    typer.echo(result.describe())
