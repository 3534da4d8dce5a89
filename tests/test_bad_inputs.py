"""The bad-file corpus (tests/badfiles.py) against every entry point that reads images: the loader,
`eda`, `train`, `evaluate`, `predict`, `predict-dataset --engine local` and the HTTP upload endpoints.

Each must finish without a traceback, keep going for the good files, and for every bad file give a
per-file error naming the file and the reason; odd but valid files (PNG named .jpg, 1x1, 100000x1,
16-bit, CMYK, animated, EXIF-rotated, non-UTF-8 or 250-character names, names holding CR, LF, tab,
a formula or a terminal escape) must give a correct result. Special files (a FIFO named .jpg, a link
to /dev/zero) and a file over the size limit are refused from os.stat, never opened or read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from badfiles import (
    EXPECTED,
    NOT_UPLOADABLE,
    RUNNING_AS_ROOT,
    Expected,
    expected,
    good_jpeg,
    make_bad_corpus,
    unlock,
    write_good_images,
)
from inference_helpers import make_bundle
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.images import UnreadableImage, load_image, read_image_info
from deepfake_detector.fileio import printable
from deepfake_detector.inference import Detector

runner = CliRunner()
IMG_SIZE = 64  # seed-cnn's four conv blocks need at least about 48 px
N_GOOD = 3


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("model"), img_size=IMG_SIZE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path], list[Path]]]:
    """One flat folder: the corpus plus N_GOOD valid JPEGs."""
    root = tmp_path_factory.mktemp("bad-folder")
    corpus = make_bad_corpus(root)
    good = write_good_images(root, N_GOOD)
    yield root, corpus, good
    unlock(corpus)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    """A Kaggle-layout dataset: good images in every split and class, the corpus in Train/Fake and in
    Test/Real (the evaluated split). Returns the root and the Test/Real corpus paths."""
    root = tmp_path_factory.mktemp("bad-dataset")
    for split in ("Train", "Validation", "Test"):
        for offset, cls in enumerate(("Real", "Fake")):
            write_good_images(root / split / cls, 6, seed=10 * offset + (split == "Test"), prefix=cls.lower())
    train_corpus = make_bad_corpus(root / "Train" / "Fake")
    test_corpus = make_bad_corpus(root / "Test" / "Real")
    yield root, test_corpus
    unlock(train_corpus)
    unlock(test_corpus)


def assert_clean_exit(result, codes: tuple[int, ...]) -> None:
    """A CLI run that ended on purpose: an expected exit code, no traceback, no escaped exception."""
    assert result.exit_code in codes, f"exit {result.exit_code}:\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def check_error(name: str, path: Path, error: str) -> None:
    want = expected(name)
    assert not want.readable, f"{name} ({path}) should have been read, got error {error!r}"
    for word in want.reason:
        assert word in error.lower(), f"{name}: {word!r} missing from the error {error!r}"


def bad_names(corpus: dict[str, Path]) -> set[str]:
    return {name for name in corpus if not expected(name).readable}


# --- the loader ------------------------------------------------------------------------------------


def test_corpus_is_complete_on_this_file_system(folder) -> None:
    _, corpus, _ = folder
    missing = set(EXPECTED) - set(corpus)
    platform_dependent = {
        "non_utf8_name",
        "symlink_loop",
        "dangling_symlink",
        "fifo_named_jpg",
        "link_to_dev_zero",
    }
    assert missing <= platform_dependent, missing
    assert os.stat(corpus["decompression_bomb"]).st_size < 100_000  # tiny on disk


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_gives_the_right_image_or_a_clear_error(folder, name: str) -> None:
    _, corpus, _ = folder
    if name not in corpus:
        pytest.skip(f"{name}: this file system cannot hold it")
    path = corpus[name]
    want: Expected = expected(name)
    if not want.readable:
        with pytest.raises(UnreadableImage) as info:
            load_image(path, size=IMG_SIZE)
        assert info.value.path == str(path) and str(path) in str(info.value)
        check_error(name, path, info.value.reason)
        return
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (*want.shape, 3)
    assert load_image(path, size=IMG_SIZE).shape == (IMG_SIZE, IMG_SIZE, 3)
    info = read_image_info(path)
    if name == "exif_rotated":  # orientation honoured: red on top, blue at the bottom
        assert info.orientation == 6 and (info.width, info.height) == (80, 40)
        top, bottom = image[:30].reshape(-1, 3).mean(0), image[-30:].reshape(-1, 3).mean(0)
        assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60, (top, bottom)
    elif name == "cmyk_jpeg":
        assert info.mode == "CMYK" and np.abs(image.astype(int) - (255, 0, 0)).max() <= 8
    elif name == "animated_gif":
        assert (image == (255, 0, 0)).all()  # the first frame
    elif name == "png_16bit":
        assert info.mode.startswith("I")
        assert image[0, 0, 0] == 0 and image[0, -1, 0] == round(47 * 1365 / 65535 * 255)
        assert np.array_equal(image[..., 0], image[..., 2])
    elif name == "very_wide":
        assert np.array_equal(image[0, :256, 0], np.arange(256))
    elif name == "png_named_jpg":
        assert info.format == "PNG"


def load_as_nobody(path: Path) -> str:
    """load_image(path) in a forked child that dropped root for `nobody`; its error text, or "decoded".
    Forked, not spawned: the loader is already imported, and a new interpreter may not be readable
    by `nobody` (a Python under /root)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_image(path)
                message = "decoded"
            except UnreadableImage as exc:
                message = str(exc)
            os.write(write_end, message.encode("utf-8", "surrogateescape"))
        except BaseException as exc:
            os.write(write_end, f"child failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        text = fh.read().decode("utf-8", "surrogateescape")
    os.waitpid(pid, 0)
    return text


@pytest.mark.skipif(not RUNNING_AS_ROOT, reason="not root: the corpus itself checks the chmod-000 refusal")
def test_chmod_000_file_is_refused_for_an_unprivileged_user() -> None:
    """Root reads any file, so the refusal is checked in a child process that drops to `nobody`."""
    scratch = Path(tempfile.mkdtemp(prefix="dfd-perm-"))
    try:
        os.chmod(scratch, 0o755)  # nobody may enter the folder but not read the file
        locked = scratch / "locked.jpg"
        locked.write_bytes(good_jpeg())
        os.chmod(locked, 0)
        assert load_as_nobody(locked) == f"{locked}: permission denied"
        os.chmod(locked, 0o644)
        assert load_as_nobody(locked) == "decoded"  # the same file, once readable
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- predict ---------------------------------------------------------------------------------------


def test_predict_scores_the_good_files_and_names_each_bad_one(model: Path, folder, tmp_path: Path) -> None:
    root, corpus, good = folder
    out = tmp_path / "preds.jsonl"
    result = runner.invoke(
        app, ["predict", str(root), "--model", str(model), "--format", "jsonl", "--out", str(out)]
    )
    assert_clean_exit(result, (1,))  # 1: some files could not be read
    rows = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == len(corpus) + len(good)
    readable = [*good, *(path for name, path in corpus.items() if expected(name).readable)]
    for want in Detector.load(model).predict(readable):  # the Python API's answer for each file
        row = rows[want.path]
        assert not row["error"], f"{want.path}: {row['error']}"
        assert (row["label"], row["note"], row["face_count"]) == (want.label, want.note, len(want.faces))
        assert row["prob_fake"] == (
            None if want.prob_fake is None else pytest.approx(want.prob_fake, abs=1e-6)
        )
    for name, path in corpus.items():
        row = rows[str(path)]
        if not expected(name).readable:
            check_error(name, path, row["error"])
            assert row["label"] == "" and row["prob_fake"] is None
    assert f"{len(bad_names(corpus))} errors" in result.stderr

    # Orientation reaches the prediction: the whole-image box is the displayed 40 x 80, not 80 x 40.
    never = runner.invoke(
        app,
        [
            "predict",
            str(corpus["exif_rotated"]),
            "--model",
            str(model),
            "--format",
            "json",
            "--faces",
            "never",
        ],
    )
    assert_clean_exit(never, (0,))
    assert json.loads(never.stdout)["predictions"][0]["faces"][0]["box"] == [0, 0, 40, 80]


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_predict_writes_odd_file_names_in_every_format(model: Path, folder, fmt: str) -> None:
    _, corpus, _ = folder
    names = [n for n in ("non_utf8_name", "long_name", "zero_byte") if n in corpus]
    result = runner.invoke(
        app,
        ["predict", *(str(corpus[n]) for n in names), "--model", str(model), "--format", fmt],
        env={"COLUMNS": "1000"},  # a table wide enough that no path is folded
    )
    assert_clean_exit(result, (1,))
    for name in names:  # bytes that are not UTF-8 as \xNN; the table shows names under their common folder
        shown = str(corpus[name]) if fmt == "csv" else Path(corpus[name]).name
        assert printable(shown) in result.stdout, name
    if "non_utf8_name" in corpus:  # absent only where the file system refuses such names
        assert "non_utf8_\\xff\\xfe.jpg" in result.stdout
    assert "empty file" in result.stdout


# --- predict-dataset -------------------------------------------------------------------------------


def test_predict_dataset_local_writes_a_row_per_file(model: Path, folder, tmp_path: Path) -> None:
    root, corpus, good = folder
    out = tmp_path / "preds.parquet"
    result = runner.invoke(
        app,
        ["predict-dataset", str(root), "--model", str(model), "--engine", "local", "--out", str(out)],
    )
    assert_clean_exit(result, (1,))
    rows = {row["path"]: row for row in pq.read_table(out).to_pylist()}
    assert len(rows) == len(corpus) + len(good)
    for name, path in corpus.items():
        row = rows[printable(str(path))]
        if expected(name).readable:
            assert not row["error"], f"{name}: {row['error']}"
        else:
            check_error(name, path, row["error"])
    assert all(rows[str(p)]["label"] in ("real", "fake", "uncertain") for p in good)


# --- eda -------------------------------------------------------------------------------------------


def test_eda_reports_every_bad_file_and_analyses_the_rest(dataset, tmp_path: Path) -> None:
    root, corpus = dataset
    out = tmp_path / "eda"
    result = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "1"])
    assert_clean_exit(result, (0,))
    summary = json.loads((out / "summary.json").read_text())
    reasons = {row["path"]: row["reason"] for row in summary["unreadable"]}
    bad = bad_names(corpus)
    assert len(reasons) == 2 * len(bad)  # the corpus sits in two folders
    for name in bad:
        check_error(name, corpus[name], reasons[str(corpus[name])])
    readable_in_corpus = len(corpus) - len(bad)
    assert summary["n_readable"] == 36 + 2 * readable_in_corpus
    assert summary["counts"]["test"]["real"] == 6 + readable_in_corpus
    resolutions = summary["properties"]["real"]["resolution"]
    assert resolutions.get("40x80") == 1 and resolutions.get("100000x1") == 1  # orientation honoured
    assert f"{2 * len(bad)} file(s) could not be read" in result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "symlink" in html.lower() and "decompression bomb" in html


# --- train -----------------------------------------------------------------------------------------
# In a child process, as tests/test_training.py does: Lightning's log handlers must not outlive a
# CliRunner's captured streams.


def train_process(data: Path, run: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deepfake_detector", "train", str(data), "--preset", "seed", "--out",
               str(run), "--img-size", str(IMG_SIZE), "--epochs", "1", "--quiet", *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, errors="surrogateescape")


def test_train_leaves_bad_files_out_and_names_them(dataset, tmp_path: Path) -> None:
    root, _ = dataset
    run = tmp_path / "run"
    result = train_process(root, run, "--batch-size", "8", "--set", "train_fraction=1.0")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (run / "model.json").is_file() and (run / "model.safetensors").is_file()
    listed = json.loads((run / "unreadable.json").read_text())
    corpus_train = {name: root / "Train" / "Fake" / Path(p).name for name, p in dataset[1].items()}
    reasons = {row["path"]: row["reason"] for row in listed}
    bad = bad_names(corpus_train)
    assert len(reasons) == len(bad)
    for name in bad:
        path = corpus_train[name]
        check_error(name, path, reasons[str(path)])
    message = " ".join(result.stderr.split())
    assert f"{len(bad)} of" in message and "left out" in message
    assert printable(str(corpus_train["zero_byte"])) in message


def test_train_stops_with_a_clear_error_when_a_class_has_no_readable_image(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("Train", "Validation"):
        write_good_images(root / split / "Real", 4, prefix="real")
        write_good_images(root / split / "Fake", 4, prefix="fake", seed=20)
    for path in (root / "Train" / "Fake").iterdir():
        path.write_bytes(b"<html>gone</html>")  # every training fake is a saved error page
    result = train_process(root, tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    message = " ".join(result.stderr.split())
    assert "4 of 16 images could not be read" in message and "not an image" in message
    assert "the train split has 4 real and 0 fake images; both classes are needed" in message


# --- evaluate --------------------------------------------------------------------------------------


def test_evaluate_scores_the_readable_files_and_lists_the_rest(model: Path, dataset, tmp_path: Path) -> None:
    root, corpus = dataset
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(model), str(root), "--out", str(out)])
    assert_clean_exit(result, (0,))
    doc = json.loads((out / f"{root.name}.json").read_text())
    reasons = {row["path"]: row["reason"] for row in doc["unreadable"]}
    bad = bad_names(corpus)
    assert set(reasons) == {str(corpus[name]) for name in bad}
    for name in bad:
        check_error(name, corpus[name], reasons[str(corpus[name])])
    scored = {row["path"] for row in doc["predictions"]}
    assert scored >= {str(corpus[name]) for name in set(corpus) - bad}
    assert len(scored) == 12 + len(corpus) - len(bad)
    assert f"{len(bad)} unreadable files skipped" in " ".join(result.stderr.split())
    assert (out / "report.html").is_file()


# --- HTTP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(model: Path):
    from fastapi.testclient import TestClient

    from deepfake_detector.service import create_app

    app_ = create_app(str(model), max_upload_mb=2.0, max_pixels=4_000_000, max_batch_files=32, timeout_s=600)
    with TestClient(app_) as test_client:
        yield test_client


def multipart(field: str, files: list[tuple[bytes, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart body built by hand, so file names can be raw (non-UTF-8) bytes."""
    boundary = b"corpus-boundary-7d1f"
    body = b""
    for name, data in files:
        body += (
            b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + field.encode()
            + b"\"; filename=\"" + name + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        )  # fmt: skip
    body += b"--" + boundary + b"--\r\n"
    return body, {"content-type": "multipart/form-data; boundary=" + boundary.decode()}


def uploadable(corpus: dict[str, Path]) -> dict[str, tuple[bytes, bytes]]:
    """name -> (file name bytes, content) for the files a client can read and send (not the links,
    not the special files, and not the chmod-000 file unless root). CR, LF and '"' in a name are
    percent-encoded, as browsers send them in a multipart header."""
    out = {}
    for name, path in corpus.items():
        if name in NOT_UPLOADABLE:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        sent = os.fsencode(path.name).replace(b"\r", b"%0D").replace(b"\n", b"%0A").replace(b'"', b"%22")
        out[name] = (sent, data)
    return out


def label_of(file_name: bytes) -> str:
    """The file name the service answers with: decoded, control characters removed, 200 at most."""
    return re.sub(r"[\x00-\x1f\x7f]", "", file_name.decode("utf-8", "replace"))[:200]


def test_each_corpus_file_uploaded_gives_a_result_or_a_4xx_naming_it(client, folder) -> None:
    _, corpus, _ = folder
    sent = uploadable(corpus)
    assert {"zero_byte", "decompression_bomb", "exif_rotated", "html_named_jpg"} <= set(sent)
    for name, (file_name, data) in sent.items():
        body, headers = multipart("file", [(file_name, data)])
        response = client.post("/v1/predict", content=body, headers=headers)
        shown = label_of(file_name)
        assert response.status_code in (200, 422), (name, response.status_code, response.text)
        if expected(name).readable or name == "no_permission":
            assert response.status_code == 200, (name, response.text)
            result = response.json()
            assert result["path"] == shown
            if name == "exif_rotated":
                assert (result["image"]["width"], result["image"]["height"]) == (40, 80)
        else:
            assert response.status_code == 422
            detail = response.json()["detail"]
            assert detail.startswith(f"{shown}: "), (name, detail)
            check_error(name, corpus[name], detail)
    assert client.get("/readyz").status_code == 200


def test_batch_upload_of_the_whole_corpus_answers_per_file(client, folder) -> None:
    _, corpus, good = folder
    sent = uploadable(corpus)
    files = [(os.fsencode(p.name), p.read_bytes()) for p in good] + list(sent.values())
    body, headers = multipart("files", files)
    response = client.post("/v1/predict/batch", content=body, headers=headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(files)
    assert [item["status"] for item in results[: len(good)]] == [200] * len(good)
    for item, name in zip(results[len(good) :], sent, strict=True):
        if expected(name).readable or name == "no_permission":
            assert item["status"] == 200 and item["error"] is None, (name, item)
        else:
            assert item["status"] == 422 and item["error"].startswith(item["path"] + ": "), (name, item)
            check_error(name, corpus[name], item["error"])
