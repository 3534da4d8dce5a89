"""Writing predictions as table, CSV, JSON or JSONL, to stdout or a file; resuming a JSONL file.

CSV and JSONL stream batch by batch; JSON and the table are written at the end. A file given with
--out is written atomically, except JSONL, which is appended to and flushed per batch so that an
interrupted run can be resumed. Nothing is opened before `begin`: `check` (the output path) runs
first, so that a bad --out is refused before any work, and an earlier file is never truncated.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

from deepfake_detector.fileio import SafeCsvWriter, atomic_write_text, json_default, printable, read_jsonl
from deepfake_detector.inference.results import ROW_FIELDS, Prediction
from deepfake_detector.outputs import check_output_file, read_head

FORMATS = ("table", "csv", "json", "jsonl")
TABLE_HEADER = ("path", "label", "P(fake)", "conf.", "faces", "note / error")
NOTE_MIN = 12  # narrowest note / error column of the table


class PredictionWriter:
    """Receives predictions batch by batch: `check(inputs)`, `begin(meta)`, `write(batch)`, `close(summary)`."""

    def __init__(self, fmt: str, out: Path | None, *, append: bool = False):
        fmt = str(getattr(fmt, "value", fmt))
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        self.out = Path(out) if out is not None else None
        self.append = append
        self.meta: dict[str, Any] = {}
        self.rows: list[Prediction] = []
        self.stream: TextIO | None = None
        self.csv_writer: SafeCsvWriter | None = None

    def check(self, inputs: Iterable[str | Path] = ()) -> None:
        """Refuse (OutputError) an --out that is a folder, an input, or an existing file not of ours."""
        if self.out is not None:
            check_output_file(self.out, inputs=inputs, ours=is_results_file)

    def begin(self, meta: dict[str, Any] | None = None) -> None:
        """Open the output (`meta`, e.g. model and engine, heads the JSON document)."""
        self.meta = dict(meta or {})
        if self.fmt == "jsonl":
            if self.out is not None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                self.stream = open(self.out, "a" if self.append else "w", encoding="utf-8")  # noqa: SIM115
            else:
                self.stream = sys.stdout
        elif self.fmt == "csv":
            self.stream = io.StringIO() if self.out is not None else sys.stdout
            self.csv_writer = SafeCsvWriter(self.stream, list(ROW_FIELDS))  # formulas neutralised, CR quoted
            self.csv_writer.writeheader()

    def write(self, predictions: list[Prediction]) -> None:
        if self.fmt == "jsonl":
            assert self.stream is not None, "begin() first"
            for p in predictions:
                self.stream.write(json.dumps(p.to_dict(), default=json_default) + "\n")
            self._flush()
        elif self.fmt == "csv":
            assert self.csv_writer is not None, "begin() first"
            for p in predictions:
                self.csv_writer.writerow(p.to_row())
            if self.out is None:
                self._flush()
        else:
            self.rows.extend(predictions)

    def _flush(self) -> None:
        assert self.stream is not None
        self.stream.flush()
        if self.out is not None and self.fmt == "jsonl":
            os.fsync(self.stream.fileno())

    def abort(self) -> None:
        """After a failure: release the JSONL file (what was flushed stays, for --resume)."""
        if self.fmt == "jsonl" and self.out is not None and self.stream is not None:
            with suppress(OSError):  # e.g. the disk that made the run fail is still full
                self.stream.close()
            self.stream = None

    def close(self, summary: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            if self.out is not None and self.stream is not None:
                self.stream.close()
                self.stream = None
        elif self.fmt == "csv":
            if self.out is not None and isinstance(self.stream, io.StringIO):
                atomic_write_text(self.out, self.stream.getvalue())
        elif self.fmt == "json":
            doc = {**self.meta, "summary": summary, "predictions": [p.to_dict() for p in self.rows]}
            text = json.dumps(doc, indent=2, default=json_default) + "\n"
            if self.out is not None:
                atomic_write_text(self.out, text)
            else:
                sys.stdout.write(text)
        else:
            self._write_table()

    def _write_table(self) -> None:
        from rich.console import Console

        if self.out is not None:
            buffer = io.StringIO()
            Console(file=buffer, width=160, no_color=True).print(results_table(self.rows))
            atomic_write_text(self.out, buffer.getvalue())
        else:
            console = Console()
            console.print(results_table(self.rows, width=console.width))


def results_table(rows: list[Prediction], width: int = 160) -> Any:
    """A rich Table of predictions, `width` columns wide at most. Paths that do not fit are shown below
    their common folder (named in the title), so that a name is broken only when it cannot fit even
    then; control characters are not shown raw."""
    from rich.markup import escape
    from rich.table import Table

    cells = [
        (
            f"[{_LABEL_STYLE.get(p.label, 'yellow')}]{p.label or '-'}[/]",
            "" if p.prob_fake is None else f"{p.prob_fake:.4f}",
            "" if p.confidence is None else f"{p.confidence:.4f}",
            str(p.face_count),
        )
        for p in rows
    ]
    widths = [len(name) for name in TABLE_HEADER[1:5]]
    for p, row in zip(rows, cells, strict=True):
        shown_cells = (p.label or "-", *row[1:])
        widths = [max(w, len(c)) for w, c in zip(widths, shown_cells, strict=True)]
    # Widths set here, not left to rich: the path gets what the fixed columns leave (a note column of
    # NOTE_MIN aside).
    fixed = sum(w + 3 for w in widths) + 2 * 3 + 1  # cells, padding, borders
    room = max(width - fixed, 2 * NOTE_MIN)
    shown = [_visible(printable(p.path)) for p in rows]
    prefix = ""
    if max((len(name) for name in shown), default=0) > room - NOTE_MIN:
        prefix = _common_folder(shown)
        shown = [name[len(prefix) :].lstrip(os.sep) for name in shown] if prefix else shown
    table = Table(show_lines=False, title=f"in {escape(prefix)}" if prefix else None)
    longest = max((len(name) for name in shown), default=4)
    path_width = max(min(longest, room - NOTE_MIN), 4)
    table.add_column(TABLE_HEADER[0], overflow="fold", width=path_width)
    for name, w in zip(TABLE_HEADER[1:5], widths, strict=True):
        table.add_column(name, justify="left" if name == "label" else "right", no_wrap=True, min_width=w)
    longest_note = max((len(p.error or p.note) for p in rows), default=0)
    table.add_column(TABLE_HEADER[5], width=max(min(room - path_width, longest_note), NOTE_MIN))
    for p, name, row in zip(rows, shown, cells, strict=True):
        table.add_row(escape(name), *row, escape(_visible(printable(p.error or p.note))))
    return table


_LABEL_STYLE = {"fake": "red", "real": "green", "uncertain": "yellow"}


def _visible(text: str) -> str:
    """Control characters (terminal escapes, CR, LF) shown as \\xNN, for display only."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _common_folder(names: list[str]) -> str:
    if len(names) < 2:
        return ""
    try:
        prefix = os.path.commonpath([os.path.dirname(name) for name in names])
    except ValueError:  # absolute and relative paths mixed
        return ""
    return "" if prefix in ("", ".", os.sep) else prefix


def is_results_file(path: Path) -> bool:
    """Whether `path` looks like a results file `predict` wrote (any format), so may be replaced."""
    head = read_head(path).decode("utf-8", "replace")
    first = head.split("\n", 1)[0].strip()
    if first.startswith(",".join(ROW_FIELDS[:3])):  # CSV header
        return True
    if first.startswith('{"path":'):  # JSONL (a torn first line too)
        return True
    if head.lstrip().startswith("{") and '"summary"' in head and '"predictions"' in head:  # JSON
        return True
    return all(name in head for name in TABLE_HEADER) and "┃" in head  # table


def read_done_paths(path: Path) -> set[str]:
    """Paths already written to a JSONL results file. A torn last line (an interrupted write) is cut
    off so appending continues on a clean line; a broken line elsewhere is an error."""
    try:
        records = read_jsonl(path)
    except ValueError as exc:
        raise ValueError(f"{exc}; cannot resume from this file") from exc
    return {str(r["path"]) for r in records if isinstance(r, dict) and "path" in r}
