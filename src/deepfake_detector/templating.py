"""The one way HTML pages are rendered: Jinja2 with the package's templates/ folder, autoescaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def html_templates(folder: str | Path, *, strict: bool = False) -> Any:
    """A Jinja2 Environment for the templates in `folder`, HTML escaped. `strict`: an undefined
    name is an error (not an empty string) and block tags leave no blank lines."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined if strict else Undefined,
        trim_blocks=strict,
        lstrip_blocks=strict,
    )
