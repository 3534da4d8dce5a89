"""A progress bar on stderr for long prediction runs (rich), as a simple advance callback."""

from __future__ import annotations

from collections.abc import Callable


def make_progress(total: int, description: str = "predicting") -> Callable[..., None]:
    """Start a bar; call `advance(n)` per batch and `advance(0, done=True)` at the end."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(description, total=total)
    progress.start()

    def advance(n: int, done: bool = False) -> None:
        progress.advance(task, n)
        if done:
            progress.stop()

    return advance
