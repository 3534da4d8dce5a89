"""`deepfake-detector info`: a model's card (what it detects, its data, figures, limits, licences)."""

from __future__ import annotations

import json

import typer

from deepfake_detector.cli.app import MODEL_HELP, app, build, fail
from deepfake_detector.options import InfoFormat
from deepfake_detector.options import InfoOptions as O


@app.command()
def info(
    model: str = typer.Argument(
        O.model,
        help=MODEL_HELP,
    ),
    fmt: InfoFormat = typer.Option(
        O.format,
        "--format",
        "-f",
        help="text: the card rendered for the terminal; markdown: its source; json: a summary of "
        "model.json, the one-line 'detects' and the card.",
    ),
) -> None:
    """Show a model's card: what it detects and what it was not trained on, its data, measured
    figures, threshold, face crop, limits and licences (MODEL_CARD.md; made from model.json for a
    run that has none).

    Example: deepfake-detector info fast
    """
    from deepfake_detector.commands import run_info
    from deepfake_detector.locate import ModelNotFound

    options = build(O, locals(), format=fmt)
    try:
        result = run_info(options)
    except (ModelNotFound, ValueError) as exc:
        raise fail(str(exc)) from exc
    if options.format == InfoFormat.json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    elif options.format == InfoFormat.markdown:
        typer.echo(result.card, nl=False)
    else:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(soft_wrap=False).print(Markdown(result.card))
