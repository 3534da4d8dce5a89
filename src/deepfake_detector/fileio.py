"""Crash-safe file writes (a reader sees the old file or the new one, never half of one), file
hashes, and text made safe for the places it goes (CSV cells a spreadsheet opens)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


TEMP_SUFFIX = ".tmp"  # temp files are hidden: "." + target name + "." + random + TEMP_SUFFIX


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (power loss, not just a killed process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temp file name next to `path`, for writers that want a path (to_csv, savefig...).

    When the block ends normally the temp file is fsync'd and renamed over `path`; when it raises
    (or the process dies) `path` is untouched. A killed process can leave the hidden temp file
    behind: `remove_stale_temps` clears those.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, printable(text).encode("utf-8"))


def printable(text: str) -> str:
    """`text` as valid Unicode: a file name whose bytes are not UTF-8 (which Python holds as surrogate
    escapes, e.g. from os.listdir) shows those bytes as \\xNN; other text is returned unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=json_default) + "\n")


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files that an atomic write killed mid-way left in `folder`; returns them.

    Call only when no other process writes into `folder` (e.g. when resuming a run).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(".") and name.endswith(TEMP_SUFFIX) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def read_jsonl(path: str | Path, *, repair: bool = True) -> list[Any]:
    """The records of a JSON-lines file that is appended to as work is done.

    A process killed mid-append leaves a torn last line (no newline, or not valid JSON): it is
    ignored and, with `repair`, cut off so that the next append starts on a clean line. A broken
    line anywhere else means the file is damaged: ValueError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    records: list[Any] = []
    good_bytes = 0
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if last and not line.endswith(b"\n"):
            break
        try:
            if line.strip():
                records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if last:
                break
            raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from exc
        good_bytes += len(line)
    if repair and good_bytes != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    return records


def json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# OWASP CSV injection: a cell starting with one of these is run as a formula by Excel, LibreOffice
# or Google Sheets (tab and CR too: some strip them and then see the next character).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: one starting like a formula gets a leading single
    quote ("'=1+2"), as OWASP advises; numbers and other text are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.DictWriter for text from outside (file names): formula-like cells neutralised (csv_cell),
    and a row holding a bare CR or LF written fully quoted, so that no reader ends the row there
    (Python's QUOTE_MINIMAL quotes a field with LF but not one with a bare CR)."""

    def __init__(self, stream: TextIO, fieldnames: list[str], lineterminator: str = "\n"):
        self._plain = csv.DictWriter(stream, fieldnames=fieldnames, lineterminator=lineterminator)
        self._quoted = csv.DictWriter(
            stream, fieldnames=fieldnames, lineterminator=lineterminator, quoting=csv.QUOTE_ALL
        )

    def writeheader(self) -> None:
        self._plain.writeheader()

    def writerow(self, row: dict[str, Any]) -> None:
        cells = {key: csv_cell(value) for key, value in row.items()}
        breaks = any(isinstance(v, str) and ("\r" in v or "\n" in v) for v in cells.values())
        (self._quoted if breaks else self._plain).writerow(cells)
