"""Writing predictions as table, CSV, JSON or JSONL, to stdout or a file; resuming a JSONL file.

CSV and JSONL stream batch by batch; JSON and the table are written at the end. A file given with
--out is written atomically, except JSONL, which is appended to and flushed per batch so that an
interrupted run can be resumed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from deepfake_detector.fileio import atomic_write_text, json_default, printable, read_jsonl
from deepfake_detector.inference.results import ROW_FIELDS, Prediction

FORMATS = ("table", "csv", "json", "jsonl")


class PredictionWriter:
    """Receives predictions batch by batch; `close(summary)` finishes the output."""

    def __init__(
        self, fmt: str, out: Path | None, *, append: bool = False, meta: dict[str, Any] | None = None
    ):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        self.out = out
        self.meta = meta or {}
        self.rows: list[Prediction] = []
        self.stream: TextIO | None = None
        self.csv_writer: csv.DictWriter | None = None
        if fmt == "jsonl":
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                self.stream = open(out, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
            else:
                self.stream = sys.stdout
        elif fmt == "csv":
            self.stream = io.StringIO() if out is not None else sys.stdout
            self.csv_writer = csv.DictWriter(self.stream, fieldnames=list(ROW_FIELDS), lineterminator="\n")
            self.csv_writer.writeheader()

    def write(self, predictions: list[Prediction]) -> None:
        if self.fmt == "jsonl":
            assert self.stream is not None
            for p in predictions:
                self.stream.write(json.dumps(p.to_dict(), default=json_default) + "\n")
            self._flush()
        elif self.fmt == "csv":
            assert self.csv_writer is not None
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

    def close(self, summary: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            if self.out is not None and self.stream is not None:
                self.stream.close()
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
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_lines=False)
        for name, justify in (
            ("path", "left"),
            ("label", "left"),
            ("prob fake", "right"),
            ("confidence", "right"),
            ("faces", "right"),
            ("note / error", "left"),
        ):
            table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for p in self.rows:
            style = "red" if p.label == "fake" else ("green" if p.label == "real" else "yellow")
            table.add_row(
                escape(printable(p.path)),
                f"[{style}]{p.label or '-'}[/]",
                "" if p.prob_fake is None else f"{p.prob_fake:.4f}",
                "" if p.confidence is None else f"{p.confidence:.4f}",
                str(len(p.faces)),
                escape(printable(p.error or p.note)),
            )
        if self.out is not None:
            buffer = io.StringIO()
            Console(file=buffer, width=160, no_color=True).print(table)
            atomic_write_text(self.out, buffer.getvalue())
        else:
            Console().print(table)


def read_done_paths(path: Path) -> set[str]:
    """Paths already written to a JSONL results file. A torn last line (an interrupted write) is cut
    off so appending continues on a clean line; a broken line elsewhere is an error."""
    try:
        records = read_jsonl(path)
    except ValueError as exc:
        raise ValueError(f"{exc}; cannot resume from this file") from exc
    return {str(r["path"]) for r in records if isinstance(r, dict) and "path" in r}
