"""Special files and odd file names from the corpus (tests/badfiles.py) at the entry points they touch.

A FIFO named like an image, a link to /dev/zero, /dev/zero itself and a (sparse) file over the size
limit must be refused from os.stat, so no command hangs on them or reads them into memory; each
becomes a per-file error while the readable files are still scored (tests/test_bad_inputs.py runs
the whole corpus, these files included, through every command). Here `predict` runs in a child
process with a timeout, so that a regression fails the test instead of hanging the run.
Names holding CR, LF, a formula or a terminal escape must come out exact in CSV (formulas
neutralised with a leading quote) and harmless in the terminal table.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from badfiles import ODD_NAMES, good_jpeg, make_bad_corpus, unlock, write_good_images
from inference_helpers import make_bundle
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.images import MAX_FILE_BYTES, UnreadableImage, load_image, read_file
from deepfake_detector.data.manifest import DatasetError, discover
from deepfake_detector.inference.video.frames import UnreadableVideo, probe_video

runner = CliRunner()
COMMAND_TIMEOUT_S = 120  # a command that hangs is cut off here (the bar is 60 s on a quiet machine)
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("model"), img_size=64)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("corpus")
    paths = make_bad_corpus(root)
    yield root, paths
    unlock(paths)


def special_folder(folder: Path) -> dict[str, Path]:
    """Two good JPEGs, a FIFO named b.jpg and a link to /dev/zero named z.jpg."""
    good = write_good_images(folder, 2)
    os.mkfifo(folder / "b.jpg")
    os.symlink("/dev/zero", folder / "z.jpg")
    return {"good_0": good[0], "good_1": good[1], "fifo": folder / "b.jpg", "zero": folder / "z.jpg"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`deepfake-detector ARGS` in a child process; fails the test (not hangs it) past the timeout."""
    command = [sys.executable, "-m", "deepfake_detector", *args]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=cwd, errors="replace"
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{' '.join(args[:2])} did not return within {COMMAND_TIMEOUT_S} s (a special file read?)"
        )


# --- the loader ------------------------------------------------------------------------------------


@needs_dev_zero
@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_device_given_as_a_path_is_refused_before_reading(path: str) -> None:
    with pytest.raises(UnreadableImage, match="character device, not a regular file"):
        load_image(path)
    with pytest.raises(UnreadableImage, match="character device"):
        read_file(path)


def test_the_size_limit_is_checked_before_reading_and_can_be_lowered(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(good_jpeg())
    size = path.stat().st_size
    assert read_file(path, max_bytes=size) == path.read_bytes()  # exactly at the limit: read
    with pytest.raises(
        UnreadableImage, match=f"file too large: {size:,} bytes, the limit is {size - 1:,} bytes"
    ):
        read_file(path, max_bytes=size - 1)
    sparse = tmp_path / "sparse.png"
    with open(sparse, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(UnreadableImage, match="the limit is 256 MiB"):
        load_image(sparse)


@needs_fifo
def test_a_fifo_video_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableVideo, match="named pipe"):
        probe_video(fifo)  # OpenCV would block in open() waiting for a writer


@needs_fifo
def test_a_fifo_manifest_csv_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "list.csv")
    with pytest.raises(DatasetError, match="named pipe"):
        discover(tmp_path / "list.csv")
    with pytest.raises(DatasetError, match="named pipe"):
        discover(tmp_path)  # the one CSV of a folder without class folders


# --- commands that must return ---------------------------------------------------------------------


@needs_fifo
@needs_dev_zero
def test_predict_with_a_fifo_and_dev_zero_returns_and_scores_the_rest(model: Path, tmp_path: Path) -> None:
    files = special_folder(tmp_path / "in")
    result = cli("predict", str(tmp_path / "in"), "/dev/zero", "--model", str(model), "--format", "jsonl",
                 "--faces", "never")  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    rows = {row["path"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {*map(str, files.values()), "/dev/zero"}
    assert all(
        rows[str(files[name])]["label"] in ("real", "fake", "uncertain") for name in ("good_0", "good_1")
    )
    assert "named pipe (FIFO), not a regular file" in rows[str(files["fifo"])]["error"]
    assert "character device" in rows[str(files["zero"])]["error"]
    assert "character device" in rows["/dev/zero"]["error"]


# --- odd names in the outputs ----------------------------------------------------------------------


def odd_files(corpus: dict[str, Path]) -> dict[str, str]:
    """name -> the file's name (relative: a path starting with / could never start a formula)."""
    return {name: corpus[name].name for name in ODD_NAMES}


NEUTRALISED = {"tab_first_name", "formula_equals_name", "formula_plus_name", "formula_minus_name",
               "formula_at_name"}  # fmt: skip


def predict_odd_names(model: Path, corpus, monkeypatch, fmt: str) -> tuple[dict[str, str], str]:
    """`predict` of the odd-name files by relative name (a path starting with / is never a formula)."""
    root, paths = corpus
    names = {name: paths[name].name for name in ODD_NAMES}
    monkeypatch.chdir(root)
    result = runner.invoke(
        app, ["predict", "--model", str(model), "--format", fmt, "--faces", "never", "--", *names.values()],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return names, result.stdout


def test_csv_keeps_every_odd_name_exact_and_neutralises_formulas(model: Path, corpus, monkeypatch) -> None:
    names, text = predict_odd_names(model, corpus, monkeypatch, "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(names)  # a CR or LF in a name did not end its row
    got = {row["path"] for row in rows}
    want = {("'" + file_name if name in NEUTRALISED else file_name) for name, file_name in names.items()}
    assert got == want
    assert all(row["label"] in ("real", "fake", "uncertain") and float(row["prob_fake"]) >= 0 for row in rows)


def test_json_keeps_odd_names_as_they_are(model: Path, corpus, monkeypatch) -> None:
    names, text = predict_odd_names(model, corpus, monkeypatch, "json")
    assert {row["path"] for row in json.loads(text)["predictions"]} == set(names.values())


def test_the_table_shows_control_characters_escaped_not_raw(model: Path, corpus, monkeypatch) -> None:
    _, text = predict_odd_names(model, corpus, monkeypatch, "table")
    assert not {"\x1b", "\x07", "\r", "\t"} & set(text)  # nothing reaches the terminal raw
    assert "\\x1b[31mred" in text and "carriage\\x0dreturn" in text and "line\\x0afeed" in text
    assert "=HYPERLINK(" in text  # the table is not a spreadsheet: formulas are shown as they are
