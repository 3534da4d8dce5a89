"""Checking where results will go before any work starts, so that a bad output path loses nothing.

A run that would fail only when it writes (an output folder that is a file, a results file that is
a folder, a file that would overwrite an input or a file that is not ours) is refused up front with
one line naming the path and the reason.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot or must not be written."""


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if os.path.lexists(parent):
            return parent
    return Path(".")


def _check_parent(path: Path) -> None:
    """The folder `path` goes into exists (or can be made) and can be written."""
    base = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not base.is_dir():
        raise OutputError(f"{path}: cannot be created, {base} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot be written, no write permission in {base}")


def check_output_folder(path: str | Path, what: str = "output folder") -> Path:
    """`path` is a folder, or can be made one; OutputError when it is an existing file (or unwritable)."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder (the {what} must be a folder)")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: cannot be written, no write permission")
        return path
    _check_parent(path)
    return path


def _same_file(a: os.stat_result, path: str) -> bool:
    try:
        b = os.stat(path)
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_output_file(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    ours: Callable[[Path], bool] | None = None,
    what: str = "results file",
) -> Path:
    """`path` can be written as a new file or replaces an earlier one of ours.

    Refused (OutputError) when it is a folder or special file, when it is one of `inputs` (the same
    file, also through a link), or when it holds something else: a non-empty file for which
    `ours(path)` is false.
    """
    path = Path(path)
    if not os.path.lexists(path):
        _check_parent(path)
        return path
    if path.is_dir():
        raise OutputError(f"{path}: is a folder (the {what} must be a file name)")
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"{path}: is not a regular file (the {what} must be a file name)")
    if any(_same_file(info, str(item)) for item in inputs):
        raise OutputError(f"{path}: is one of the inputs; refusing to overwrite it with the {what}")
    if info.st_size and ours is not None and not ours(path):
        raise OutputError(
            f"{path}: exists and is not a {what} of deepfake-detector; not overwritten "
            "(remove it or choose another name)"
        )
    if not os.access(path, os.W_OK):
        raise OutputError(f"{path}: cannot be written, no write permission")
    return path


def read_head(path: Path, size: int = 8192) -> bytes:
    """The first `size` bytes of a regular file (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def plural(n: int, word: str) -> str:
    """For summaries: "1 image", "2 images", "0 errors"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
