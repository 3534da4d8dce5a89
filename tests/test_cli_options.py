"""The CLI mirrors the library: one option name per idea (old spellings as hidden aliases), typed
choices, output paths checked before any work, one-line errors, and summaries that count right."""

from __future__ import annotations

import dataclasses
import errno
import json
import re
from pathlib import Path

import pytest
from inference_helpers import make_exported_bundle, write_images
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.inference.batch_run import PredictSummary, run_predict
from deepfake_detector.inference.results import Prediction
from deepfake_detector.options import PredictOptions, ServeOptions

runner = CliRunner()


def flat(text: str) -> str:
    """Output with rich's box characters and line breaks taken out, for matching messages."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_exported_bundle(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    return write_images(tmp_path / "images", 3, seed=4)


def predict(*args: str):
    return runner.invoke(app, ["predict", *args])


# --- summaries and exit codes ----------------------------------------------------------------------


def test_summary_says_1_image_and_an_empty_folder_is_no_input(
    model: Path, images: list[Path], tmp_path: Path
):
    one = predict(str(images[0]), "--model", str(model), "--format", "jsonl")
    assert one.exit_code == 0, one.output
    assert re.search(
        r"^1 image: \d fake, \d real, (1 uncertain, )?0 no face, 0 errors in ", one.stderr, re.M
    ), one.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = predict(str(empty), "--model", str(model), "--format", "csv")
    assert nothing.exit_code == 2 and nothing.stdout == ""
    assert error_lines(nothing.stderr) == [
        f"error: no input images or videos ({empty}: folder holds no image or video files)"
    ]
    assert "images" not in nothing.stderr.replace("images or videos", "")


def test_an_input_that_matches_nothing_is_a_warning_and_exit_1(
    model: Path, images: list[Path], tmp_path: Path
):
    result = predict(str(images[0]), str(tmp_path / "*.webp"), "--model", str(model), "--format", "jsonl")
    assert result.exit_code == 1, result.output
    assert len(result.stdout.splitlines()) == 1  # one row: the image; the pattern is no row
    assert f"warning: {tmp_path / '*.webp'}: no file matches this pattern" in flat(result.stderr)
    assert "1 image: " in result.stderr


def _row(path: str, label: str = "", prob: float | None = None, error: str = "") -> Prediction:
    return Prediction(path, label, prob, 0.5, error=error)


def test_summary_counts_images_and_videos_apart() -> None:
    summary = PredictSummary(engine="onnx", seconds=2.0)
    summary.count([_row("a.jpg", "fake", 0.9), _row("b.mp4", "real", 0.1), _row("c.MOV", error="broken")])
    summary.count([_row("d.png")])  # no face
    assert (summary.images, summary.videos, summary.errors, summary.no_face) == (2, 2, 1, 1)
    assert (
        summary.describe()
        == "2 images, 2 videos: 1 fake, 1 real, 1 no face, 1 error in 2.0 s (2.0 files/s, onnx)"
    )
    assert summary.exit_code == 1
    only_video = PredictSummary(engine="torch", seconds=1.0)
    only_video.count([_row("x.webm", error="broken")])
    assert only_video.describe().startswith("1 video: 0 fake, 0 real, 0 no face, 1 error in")
    assert only_video.exit_code == 2
    assert PredictSummary(unmatched=[("*.gif", "no file matches this pattern")]).exit_code == 1
    assert summary.to_dict()["videos"] == 2 and summary.to_dict()["images"] == 2


def test_run_predict_resumes_from_python(model: Path, images: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    options = PredictOptions(format="jsonl", out=out, resume=True)
    first = run_predict(str(model), [str(images[0])], options)
    assert (first.images, first.skipped, first.exit_code) == (1, 0, 0)
    second = run_predict(str(model), [str(p) for p in images], options)
    assert (second.images, second.skipped, second.exit_code) == (2, 1, 0)
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == [str(p) for p in images]
    third = run_predict(str(model), [str(p) for p in images], options)
    assert third.files == 0 and third.describe() == f"nothing to do: all 3 files are already in {out}"


# --- output paths are checked before any work -------------------------------------------------------


def test_out_onto_an_input_image_is_refused_and_the_image_kept(model: Path, images: list[Path]) -> None:
    before = images[1].read_bytes()
    result = predict(*map(str, images), "--model", str(model), "--format", "csv", "--out", str(images[1]))
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = error_lines(result.stderr)
    assert str(images[1]) in line and "is one of the inputs" in line
    assert images[1].read_bytes() == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "table"])
def test_out_onto_a_file_that_is_not_ours_is_refused(
    model: Path, images: list[Path], tmp_path: Path, fmt: str
):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not results\n")
    # A model that does not exist: the output is refused first, before anything is loaded.
    result = predict(
        str(images[0]), "--model", str(tmp_path / "nowhere"), "--format", fmt, "--out", str(notes)
    )
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert "not a results file of deepfake-detector" in line and str(notes) in line
    assert notes.read_text() == "my notes, not results\n"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "table"])
def test_an_earlier_results_file_may_be_replaced(model: Path, images: list[Path], tmp_path: Path, fmt: str):
    out = tmp_path / f"results.{fmt}"
    for paths in (images, images[:1]):
        result = predict(*map(str, paths), "--model", str(model), "--format", fmt, "--out", str(out))
        assert result.exit_code == 0, result.output
    assert str(images[0].name) in out.read_text() and str(images[2].name) not in out.read_text()


def test_out_an_existing_folder_and_heatmap_a_file_are_refused(
    model: Path, images: list[Path], tmp_path: Path
):
    folder = tmp_path / "results"
    folder.mkdir()
    result = predict(str(images[0]), "--model", str(model), "--format", "csv", "--out", str(folder))
    assert result.exit_code == 2 and f"error: {folder}: is a folder" in result.stderr
    assert list(folder.iterdir()) == []

    page = tmp_path / "page.html"
    page.write_text("<html></html>")
    for option in ("--heatmap", "--video-out"):
        result = predict(str(images[0]), "--model", str(model), "--format", "csv", option, str(page))
        assert result.exit_code == 2 and result.stdout == ""
        assert f"error: {page}: exists and is not a folder" in flat(result.stderr)
        assert page.read_text() == "<html></html>"


def test_eda_and_evaluate_refuse_a_file_as_out(tmp_path: Path, images: list[Path]) -> None:
    report = tmp_path / "report.txt"
    report.write_text("keep me")
    data = images[0].parent
    for args in (
        ["eda", str(data), "--out", str(report)],
        ["evaluate", "default", str(data), "--out", str(report)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        (line,) = error_lines(result.stderr)
        assert line == f"error: {report}: exists and is not a folder (the report folder must be a folder)"
        assert report.read_text() == "keep me"


def test_a_full_disk_is_one_line_and_debug_shows_the_traceback(
    model: Path, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepfake_detector.inference import writers

    out = tmp_path / "r.jsonl"

    def full(self, predictions):  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(writers.PredictionWriter, "write", full)
    result = predict(str(images[0]), "--model", str(model), "--format", "jsonl", "--out", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert error_lines(result.stderr) == [f"error: {out}: no space left on device"]

    debug = runner.invoke(app, ["--debug", "predict", str(images[0]), "--model", str(model), "--out", str(out),
                                "--format", "jsonl"])  # fmt: skip
    assert isinstance(debug.exception, OSError) and debug.exception.errno == errno.ENOSPC


# --- train -------------------------------------------------------------------------------------------


def test_train_resume_on_a_corrupt_data_json_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: seed-cnn\n")
    (run / "data.json").write_text('{"root": "/data", "manifest_')  # cut short
    result = runner.invoke(app, ["train", "--resume", str(run), "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"error: {run / 'data.json'}: unreadable (") and "cannot resume" in line


def test_train_with_an_unknown_model_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(tmp_path / "data"), "--model", "resnet99", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: unknown model 'resnet99'; available: ")
    assert not (tmp_path / "r").exists()


# --- option names, aliases, typed choices -------------------------------------------------------------


def test_old_spellings_are_hidden_aliases(model: Path, images: list[Path], tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    folder = str(images[0].parent)
    help_text = runner.invoke(app, ["predict-dataset", "--help"]).output
    assert "--runner" in help_text and "--backend" not in help_text
    assert "--limit-per-class" in runner.invoke(app, ["eda", "--help"]).output
    assert "--sample" not in runner.invoke(app, ["eda", "--help"]).output
    assert "--limit " not in runner.invoke(app, ["evaluate", "--help"]).output

    rows = {}
    for name, args in {
        "new": ["--runner", "local", "--engine", "onnx"],
        "old": ["--engine", "local", "--backend", "onnx"],
    }.items():
        out = tmp_path / f"{name}.parquet"
        result = runner.invoke(
            app, ["predict-dataset", folder, "--model", str(model), "--out", str(out), *args]
        )
        assert result.exit_code == 0, result.output
        assert "local" in result.stderr and "3 images, 0 errors" in result.stderr
        rows[name] = pq.read_table(out).to_pylist()
        notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
        if name == "old":
            assert notes == [
                "note: --engine local is deprecated, use --runner local",
                "note: --backend is deprecated, use --engine",
            ]
        else:
            assert notes == []
    assert rows["new"] == rows["old"] and len(rows["new"]) == 3


def test_typed_choices_are_refused_by_the_parser(model: Path, images: list[Path]) -> None:
    cases = [
        ["predict", str(images[0]), "--engine", "gpu"],
        ["predict", str(images[0]), "--faces", "sometimes"],
        ["predict", str(images[0]), "--aggregate", "median"],
        ["predict-dataset", str(images[0].parent), "--engine", "spark"],
        ["predict-dataset", str(images[0].parent), "--runner", "spark"],
        ["serve", "--engine", "gpu"],
        ["evaluate", str(model), str(images[0].parent), "--out", "x", "--engine", "gpu"],
        ["export", str(model), "--format", "tflite"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for" in flat(result.stderr) and f"'{args[-1]}'" in flat(result.stderr), args


def test_serve_defaults_are_the_service_limits() -> None:
    pytest.importorskip("starlette")
    from deepfake_detector.service.limits import ServiceLimits

    limits, serve = ServiceLimits(), ServeOptions()
    for name in (
        "max_upload_mb",
        "max_pixels",
        "max_video_mb",
        "max_video_s",
        "queue_size",
        "max_batch_files",
    ):
        assert getattr(serve, name) == getattr(limits, name), name
    assert (serve.timeout, serve.upload_timeout) == (limits.timeout_s, limits.upload_timeout_s)


def test_cli_defaults_come_from_the_options(model: Path) -> None:
    from typer.main import get_command

    command = get_command(app)
    for name, options in (("predict", PredictOptions), ("serve", ServeOptions)):
        params = {p.name: p.default for p in command.commands[name].params}  # type: ignore[attr-defined]
        for f in dataclasses.fields(options):
            if f.name in params and f.default is not dataclasses.MISSING and f.default is not None:
                assert params[f.name] == f.default, (name, f.name)


def test_version_and_table_keeps_file_names_whole(model: Path, tmp_path: Path) -> None:
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and re.fullmatch(r"deepfake-detector \d+\.\d+\.\d+\S*\n", version.stdout)

    deep = tmp_path / "a_fairly_long_folder_name" / "another_long_folder_name_here"
    paths = write_images(deep, 2, seed=5)
    renamed = [p.rename(p.with_name(f"profile_picture_{i:03d}.jpg")) for i, p in enumerate(paths)]
    result = runner.invoke(app, ["predict", str(deep), "--model", str(model)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for path in renamed:
        assert path.name in result.stdout, result.stdout


@pytest.mark.parametrize("command", ["predict", "eda", "train", "evaluate", "predict-dataset"])
def test_help_of_every_reading_command_states_what_is_read(command: str) -> None:
    from deepfake_detector.filelimits import MAX_FILE_BYTES, describe_limit

    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "Only regular files are read" in text and f"images over {describe_limit(MAX_FILE_BYTES)}" in text
