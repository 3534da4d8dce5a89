"""The scan checkpoint of an eda run: what an interrupted scan finished, so that --resume skips it.

OUT/.eda-scan/ holds
- state.json: the manifest (hash, file count) and analysis size the scan is for; written first;
- records.jsonl: one line per analysed file (its ImageRecord, or why it is unreadable), appended
  and flushed after every chunk;
- sums.npz: the per-label spectrum and pixel sums and a bitmap of the files they include, replaced
  atomically every so often. This is the commit point: a file counts as done only when the bitmap
  says so, and its line is in records.jsonl because the lines are fsync'd before each commit. Lines
  past the last commit (and a torn last line) are dropped on resume and those files scanned again.
The folder is removed once the report is written.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deepfake_detector.data.manifest import Manifest
from deepfake_detector.eda.stats import ChunkResult, ImageRecord
from deepfake_detector.fileio import atomic_output, atomic_write_bytes, atomic_write_json, read_jsonl

SCAN_DIR = ".eda-scan"
FORMAT = 1
# Commit no more often than once per this many times the last commit took: under ~5% overhead,
# and on a fast disk a commit after nearly every chunk.
COMMIT_COST_RATIO = 20


class ScanCheckpointError(ValueError):
    """The out folder holds a scan checkpoint that cannot be used (or must not be overwritten)."""


def _record_line(record: ImageRecord) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    return {"index": fields.pop("index"), "record": fields}


def _parse_line(line: Any) -> tuple[int, ImageRecord | str]:
    """(index, record) or (index, reason unreadable); ValueError for anything else."""
    try:
        index = int(line["index"])
        if "error" in line:
            return index, str(line["error"])
        fields = line["record"]
        fields = {**fields, "mean_rgb": tuple(fields["mean_rgb"]), "std_rgb": tuple(fields["std_rgb"])}
        return index, ImageRecord(index=index, **fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a scan record ({exc!r})") from exc


class ScanCheckpoint:
    """Persists a running scan of `manifest` into `out_dir`/.eda-scan; see the module docstring."""

    def __init__(
        self, out_dir: str | Path, manifest: Manifest, size: int, commit_cost_ratio: float = COMMIT_COST_RATIO
    ):
        self.commit_cost_ratio = commit_cost_ratio
        self.folder = Path(out_dir) / SCAN_DIR
        self.size = size
        self.identity = {
            "format": FORMAT,
            "manifest_hash": manifest.digest(),
            "n_files": len(manifest),
            "size": size,
        }
        self.done = np.zeros(len(manifest), dtype=bool)
        self.sums = ChunkResult(size)  # sums and counts only; the records live in the scan result
        self._stream: BinaryIO | None = None
        self._last_commit = -math.inf
        self._commit_seconds = 0.0

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    @property
    def records_path(self) -> Path:
        return self.folder / "records.jsonl"

    @property
    def sums_path(self) -> Path:
        return self.folder / "sums.npz"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def matches(self) -> bool:
        try:
            return json.loads(self.state_path.read_text()) == self.identity
        except (OSError, ValueError):
            return False

    def committed(self) -> np.ndarray:
        """Bool per manifest file: done as far as the files on disk say (none before the first commit)."""
        return self._load_sums()[3] if self.sums_path.is_file() else np.zeros(len(self.done), dtype=bool)

    def refuse_overwrite(self) -> ScanCheckpointError:
        """The error for a run without --resume that finds an interrupted scan in its out folder."""
        if not self.matches():
            return ScanCheckpointError(
                f"{self.folder.parent} holds an interrupted scan of another dataset or other --sample/--seed "
                f"options; delete {self.folder} to start over, or use another --out"
            )
        return ScanCheckpointError(
            f"{self.folder.parent} holds an interrupted scan ({int(self.committed().sum())} of "
            f"{self.identity['n_files']} images done); add --resume to continue it, or delete "
            f"{self.folder} to start over"
        )

    def start(self) -> None:
        """A fresh checkpoint (anything left in the folder is discarded)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        atomic_write_json(self.state_path, self.identity)
        self._stream = open(self.records_path, "ab")  # noqa: SIM115 (closed by close/remove)

    def load(self) -> ChunkResult:
        """What the interrupted scan committed, as one ChunkResult; the checkpoint continues from it."""
        if not self.matches():
            raise ScanCheckpointError(
                f"{self.folder}: the interrupted scan was of another dataset or other --sample/--seed "
                "options (or the files changed since); delete it to start over, or use another --out"
            )
        result = ChunkResult(self.size)
        if self.sums_path.is_file():
            result.spectrum_sum, result.image_sum, result.label_count, self.done = self._load_sums()
        try:
            lines = read_jsonl(self.records_path)
            parsed = [_parse_line(line) for line in lines]
        except ValueError as exc:
            raise ScanCheckpointError(f"{self.records_path}: damaged ({exc}); delete {self.folder}") from exc
        kept: dict[int, tuple[Any, ImageRecord | str]] = {}
        for line, (index, item) in zip(lines, parsed, strict=True):
            if 0 <= index < len(self.done) and self.done[index]:
                kept[index] = (line, item)  # a file scanned twice (killed before a commit): keep one
        missing = int(self.done.sum()) - len(kept)
        if missing:
            raise ScanCheckpointError(
                f"{self.folder}: {missing} committed files have no record (damaged); delete it to start over"
            )
        for index, (_, item) in sorted(kept.items()):
            if isinstance(item, ImageRecord):
                result.records.append(item)
            else:
                result.failures.append((index, item))
        # Rewrite the lines as exactly the committed ones, then append after them.
        with atomic_output(self.records_path) as tmp, open(tmp, "wb") as fh:
            for _, (line, _) in sorted(kept.items()):
                fh.write(json.dumps(line).encode() + b"\n")
        self.sums.spectrum_sum = result.spectrum_sum.copy()
        self.sums.image_sum = result.image_sum.copy()
        self.sums.label_count = result.label_count.copy()
        self._stream = open(self.records_path, "ab")  # noqa: SIM115 (closed by close/remove)
        return result

    def add(self, chunk: ChunkResult) -> None:
        """Record one analysed chunk; commits when the last commit is long enough ago."""
        assert self._stream is not None, "start() or load() first"
        lines = [_record_line(r) for r in chunk.records]
        lines += [{"index": index, "error": reason} for index, reason in chunk.failures]
        self._stream.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        self._stream.flush()
        self.sums.spectrum_sum += chunk.spectrum_sum
        self.sums.image_sum += chunk.image_sum
        self.sums.label_count += chunk.label_count
        self.done[[r.index for r in chunk.records] + [index for index, _ in chunk.failures]] = True
        since = time.perf_counter() - self._last_commit
        if self._last_commit == -math.inf or since >= self.commit_cost_ratio * self._commit_seconds:
            self.commit()

    def commit(self) -> None:
        """Make everything added so far count as done: fsync the lines, then replace sums.npz."""
        assert self._stream is not None
        started = time.perf_counter()
        self._stream.flush()
        os.fsync(self._stream.fileno())
        buffer = io.BytesIO()
        np.savez(
            buffer,
            spectrum_sum=self.sums.spectrum_sum,
            image_sum=self.sums.image_sum,
            label_count=self.sums.label_count,
            done=np.packbits(self.done),
        )
        atomic_write_bytes(self.sums_path, buffer.getbuffer())
        self._last_commit = time.perf_counter()
        self._commit_seconds = self._last_commit - started

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def remove(self) -> None:
        """Delete the checkpoint (the report is written). state.json goes first: without it, leftovers
        are not an interrupted scan."""
        self.close()
        self.state_path.unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _load_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, size = len(self.done), self.size
        try:
            with np.load(self.sums_path) as data:
                spectrum, image = data["spectrum_sum"], data["image_sum"]
                counts = data["label_count"]
                done = np.unpackbits(data["done"], count=n).astype(bool)
        except (OSError, ValueError, KeyError) as exc:
            raise ScanCheckpointError(f"{self.sums_path}: damaged ({exc}); delete {self.folder}") from exc
        if spectrum.shape != (2, size, size) or image.shape != (2, size, size, 3) or counts.shape != (2,):
            raise ScanCheckpointError(f"{self.sums_path}: unexpected array shapes; delete {self.folder}")
        return spectrum, image, counts, done
