"""The Typer application object every command module registers on, with one-line errors for all.

Every command is: parse -> one options object (deepfake_detector.options) -> one library call ->
printing what it returned. An exception a command did not expect becomes one line on stderr and exit
code 2; `deepfake-detector --debug COMMAND ...` shows the full traceback instead.
"""

from __future__ import annotations

import dataclasses
import errno
import sys
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

T = TypeVar("T")
MODEL_HELP = "Run folder, model file, a packaged model (default, fast) or hf://owner/name[@revision]."
THRESHOLD_HELP = (
    "P(fake) at which a face is called fake, instead of the model's own (from its Validation split)."
)
BAND_HELP = (
    "P(fake) within this of the threshold is reported as 'uncertain' (model default 0.05; 0 gives a "
    "verdict whenever P(fake) is on the threshold's side of 0.5)."
)
_state = {"debug": False}


def one_line(exc: BaseException) -> str:
    """An exception as one line naming the file and the reason where it has them."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = "no space left on device" if exc.errno == errno.ENOSPC else exc.strerror
        return f"{exc.filename}: {reason}" if exc.filename else reason
    text = " ".join(str(exc).split())
    if isinstance(exc, (ValueError, RuntimeError, LookupError)) and text:
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


def _passed_through() -> tuple[type[BaseException], ...]:
    """The exceptions the command line itself handles: usage errors, Exit, Abort (Typer's; click's
    too where Typer is built on click)."""
    found: list[type[BaseException]] = [typer.Exit, typer.Abort]
    base = getattr(typer.exceptions, "TyperException", None)
    if base is not None:
        found.append(base)
    try:
        import click

        found += [click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort]
    except ImportError:
        pass
    return tuple(found)


_PASSED_THROUGH = _passed_through()


class OneLineErrors(TyperGroup):
    """Turns an unexpected exception in any command into one `error:` line (not with --debug)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSED_THROUGH:
            raise
        except BrokenPipeError:  # e.g. `deepfake-detector predict ... | head`: the reader has gone
            raise typer.Exit(1) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise fail(one_line(exc)) from exc


app = typer.Typer(
    name="deepfake-detector",
    cls=OneLineErrors,
    help="Tell real face images from deepfakes: eda, train, evaluate, predict, export, serve, info, push. "
    "Errors are one line on stderr with exit code 2 (--debug: the full traceback).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from deepfake_detector import __version__

        typer.echo(f"deepfake-detector {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    _state["debug"] = debug


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a clear error (no traceback) and return the Exit to raise."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def warn(message: str) -> None:
    """One `warning:` line on stderr."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def build(cls: type[T], values: dict[str, Any], **renamed: Any) -> T:
    """An options dataclass from a command's parameters (`locals()`): each field takes the parameter
    of its name; `renamed` gives the fields whose parameter is spelt otherwise (e.g. format=fmt)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{**{k: v for k, v in values.items() if k in names}, **renamed})


def alias(new: Any, old: Any, old_name: str, new_name: str, default: Any = None) -> Any:
    """The value of an option given under its new name, or under an old, hidden one (with a note)."""
    if old is None or old == default:
        return new
    print(f"note: {old_name} is deprecated, use {new_name}", file=sys.stderr)
    return old if new is None or new == default else new
