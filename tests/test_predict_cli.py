"""`deepfake-detector predict`: inputs (files, folders, globs, stdin), formats, exit codes, --resume."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import assert_verdict_consistent, make_exported_bundle, write_images
from PIL import Image
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.inference import Detector
from deepfake_detector.inference.results import ROW_FIELDS, Prediction

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_exported_bundle(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """images/a/*.jpg (3), images/a/deeper/*.png (2), images/b/*.jpg (2), a text file, a corrupt JPEG."""
    root = tmp_path / "images"
    write_images(root / "a", 3, seed=1)
    write_images(root / "a" / "deeper", 2, seed=2, ext=".png")
    write_images(root / "b", 2, seed=3)
    (root / "b" / "readme.txt").write_text("not an image, and not picked up from a folder")
    good = (root / "b" / "img_000.jpg").read_bytes()
    (root / "b" / "broken.jpg").write_bytes(good[: len(good) // 2])
    return root


def api_predictions(model: Path, paths: list[str]) -> list[Prediction]:
    """What the Python API answers for the same files (the engine `predict` picks: ONNX here)."""
    detector = Detector.load(model)
    assert detector.engine_name == "onnx"
    return detector.predict(paths)


def assert_rows_match(rows: list[dict], expected: list[Prediction]) -> None:
    """CLI rows (JSON, or CSV with string fields) equal the API's predictions, in the same order."""
    assert [row["path"] for row in rows] == [p.path for p in expected]
    for row, want in zip(rows, expected, strict=True):
        assert (row["label"], int(row["face_count"])) == (want.label, len(want.faces)), row["path"]
        assert float(row["prob_fake"]) == pytest.approx(want.prob_fake, abs=1e-6), row["path"]
        assert float(row["threshold"]) == pytest.approx(want.threshold, abs=1e-6)


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, ["predict", *args], input=stdin)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_folder_is_searched_recursively_and_a_corrupt_file_gives_an_error_row(
    model: Path, tree: Path
) -> None:
    result = run(str(tree), "--model", str(model), "--format", "csv")
    assert result.exit_code == 1, result.output  # some failed
    rows = rows_of(result.stdout)
    assert list(rows[0]) == list(ROW_FIELDS)
    names = [Path(r["path"]).relative_to(tree).as_posix() for r in rows]
    assert names == sorted(names) and len(names) == 8  # 7 images + the corrupt one, no readme.txt
    assert "a/deeper/img_001.png" in names
    scored = [r for r in rows if not r["error"]]
    assert_rows_match(scored, api_predictions(model, [r["path"] for r in scored]))
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert "truncated" in broken["error"].lower() and broken["label"] == "" and broken["prob_fake"] == ""
    for row in rows:
        if not row["error"]:
            assert_verdict_consistent(row)
            assert row["face_count"] == "1" and json.loads(row["faces"])[0]["box"] == [0, 0, 80, 80]
    assert "8 images: " in result.stderr and ", 1 error in " in result.stderr and "img/s" in result.stderr


def test_exit_code_is_0_when_all_read_and_2_when_none_could_be(model: Path, tree: Path) -> None:
    assert run(str(tree / "a"), "--model", str(model), "--format", "csv").exit_code == 0
    bad = tree / "b" / "broken.jpg"
    result = run(str(bad), str(tree / "b" / "readme.txt"), str(tree / "missing.jpg"), "--model", str(model))
    assert result.exit_code == 2, result.output


def test_globs_and_stdin_paths(model: Path, tree: Path) -> None:
    by_glob = run(str(tree / "**" / "*.png"), "--model", str(model), "--format", "jsonl")
    assert by_glob.exit_code == 0, by_glob.output
    found = [json.loads(line)["path"] for line in by_glob.stdout.splitlines()]
    assert [Path(p).name for p in found] == ["img_000.png", "img_001.png"]

    listed = "\n".join([str(tree / "a" / "img_001.jpg"), "", str(tree / "b" / "img_000.jpg")]) + "\n"
    by_stdin = run("-", "--model", str(model), "--format", "jsonl", stdin=listed)
    assert by_stdin.exit_code == 0, by_stdin.output
    assert [json.loads(line)["path"] for line in by_stdin.stdout.splitlines()] == listed.split()

    nothing = run(str(tree / "*.webp"), "--model", str(model), "--format", "csv")
    assert nothing.exit_code == 2 and "no file matches this pattern" in nothing.stderr and not nothing.stdout


def test_json_and_table_formats(model: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = run(str(tree / "a"), "--model", str(model), "--format", "json", "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["engine"] == "onnx" and doc["summary"]["images"] == 5 and len(doc["predictions"]) == 5
    expected = api_predictions(model, [p["path"] for p in doc["predictions"]])
    assert_rows_match(doc["predictions"], expected)
    labels = [p.label for p in expected]
    assert (doc["summary"]["fake"], doc["summary"]["real"]) == (labels.count("fake"), labels.count("real"))
    assert list(doc["predictions"][0]) == list(ROW_FIELDS)

    table = run(str(tree / "b"), "--model", str(model), "--format", "table")
    assert table.exit_code == 1
    assert "img_001.jpg" in table.stdout and "truncated" in table.stdout.lower()


def test_engines_give_the_same_answers_from_the_cli(model: Path, tree: Path) -> None:
    outputs = {}
    for engine in ("torch", "onnx"):
        result = run(str(tree / "a"), "--model", str(model), "--format", "csv", "--engine", engine)
        assert result.exit_code == 0, result.output
        outputs[engine] = rows_of(result.stdout)
    assert [r["label"] for r in outputs["torch"]] == [r["label"] for r in outputs["onnx"]]
    np.testing.assert_allclose(
        [float(r["prob_fake"]) for r in outputs["torch"]],
        [float(r["prob_fake"]) for r in outputs["onnx"]],
        atol=1e-5,
    )


def test_resume_skips_paths_already_written(model: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = run(str(tree / "a" / "img_000.jpg"), str(tree / "a" / "img_001.jpg"), "--model", str(model),
                "--format", "jsonl", "--out", str(out))  # fmt: skip
    assert first.exit_code == 0, first.output
    with open(out, "a") as fh:  # a run killed in the middle of writing a line
        fh.write('{"path": "' + str(tree / "a" / "img_002.jpg") + '", "lab')
    second = run(str(tree / "a"), "--model", str(model), "--format", "jsonl", "--out", str(out), "--resume")
    assert second.exit_code == 0, second.output
    assert "2 already done" in second.stderr
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert len(paths) == len(set(paths)) == 5
    assert paths[:2] == [str(tree / "a" / "img_000.jpg"), str(tree / "a" / "img_001.jpg")]

    third = run(str(tree / "a"), "--model", str(model), "--format", "jsonl", "--out", str(out), "--resume")
    assert third.exit_code == 0 and "nothing to do" in third.stderr
    assert len(out.read_text().splitlines()) == 5

    refused = run(str(tree / "a"), "--model", str(model), "--format", "csv", "--out", str(tmp_path / "x.csv"),
                  "--resume")  # fmt: skip
    assert refused.exit_code == 2 and "--resume needs --format jsonl" in " ".join(refused.stderr.split())


def test_photo_without_a_face_is_not_an_error(model: Path, tmp_path: Path) -> None:
    photo = tmp_path / "wall.png"
    Image.fromarray(np.full((400, 900, 3), 200, np.uint8)).save(photo)
    result = run(str(photo), "--model", str(model), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (
        row["face_count"] == 0
        and row["faces"] == []
        and row["note"] == "no face found"
        and row["error"] == ""
        and row["label"] == ""
    )
    assert "1 no face" in result.stderr


def test_bad_options_and_missing_model_fail_clearly(model: Path, tree: Path, tmp_path: Path) -> None:
    result = run(str(tree), "--model", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such model" in " ".join(result.stderr.split())
    assert run(str(tree), "--model", str(model), "--format", "xml").exit_code == 2
    assert run(str(tree), "--model", str(model), "--faces", "sometimes").exit_code == 2


def test_heatmap_option_writes_one_overlay_per_face_and_a_page(
    model: Path, tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "heat"
    result = run(str(tree / "a"), "--model", str(model), "--format", "jsonl", "--heatmap", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    heatmaps = [Path(face["heatmap"]) for row in rows for face in row["faces"]]
    assert len(heatmaps) == 5 and all(p.is_file() and p.parent == out for p in heatmaps)
    assert (out / "index.html").is_file()


def test_predict_command_runs_without_torch(model: Path, tree: Path) -> None:
    script = (
        "import sys; sys.modules['torch'] = None\nfrom deepfake_detector.cli import app\napp(sys.argv[1:])\n"
    )
    args = ["predict", str(tree / "a"), "--model", str(model), "--format", "jsonl"]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 5
    assert_rows_match(rows, api_predictions(model, [row["path"] for row in rows]))
    assert "onnx" in done.stderr
