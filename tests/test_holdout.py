"""Evaluation never scores training data: a flat folder is evaluated on the split training held out,
and copies of training images (other names, same bytes) are left out and reported."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.manifest import discover
from deepfake_detector.data.train_manifest import TRAIN_MANIFEST, read_train_manifest
from deepfake_detector.evaluation.holdout import (
    TrainingData,
    exclude_training,
    held_out,
    load_training_data,
    select_split,
)

SIZE = 48
PER_CLASS = 60  # the reported case: 60 + 60 images, 80/10/10 -> 96 train, 12 val, 12 test


def write_flat(root: Path, per_class: int = PER_CLASS, seed: int = 0) -> Path:
    """Real = smooth noise, fake = the same with a bright square; every image distinct."""
    rng = np.random.default_rng(seed)
    for cls in ("Real", "Fake"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(60, 120, (SIZE, SIZE, 3), dtype=np.uint8)
            if cls == "Fake":
                img[10:30, 10:30] = 230
            Image.fromarray(img).save(root / cls / f"{cls.lower()}_{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A seed-cnn trained for one epoch on a flat Real/Fake folder (seconds on a CPU)."""
    root = tmp_path_factory.mktemp("holdout")
    data = write_flat(root / "mydata")
    run = root / "run"
    args = ["train", str(data), "--preset", "seed", "--out", str(run), "--epochs", "1", "--img-size", str(SIZE),
            "--batch-size", "16", "--set", "train_fraction=1.0", "--set", "val_fraction=1.0", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    return data, run


def evaluate(run: Path, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["evaluate", str(run), str(data), "--out", str(out), "--workers", "1", *extra]
    )
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_training_records_its_files_and_split(trained: tuple[Path, Path]) -> None:
    data, run = trained
    recorded = read_train_manifest(run)
    assert recorded is not None and (recorded.seed, recorded.fractions) == (42, (0.8, 0.1, 0.1))
    assert [(s.name, s.layout) for s in recorded.sources] == [("mydata", "flat")]
    assert len(recorded.files) == 108 and {f.split for f in recorded.files} == {"train", "val"}
    assert all(len(f.sha256) == 64 for f in recorded.files)
    with gzip.open(run / TRAIN_MANIFEST) as fh:
        assert json.load(fh)["columns"] == ["relpath", "label", "split", "size", "sha256"]
    assert json.loads((run / "data.json").read_text())["split"] == {"seed": 42, "fractions": [0.8, 0.1, 0.1]}


def test_a_flat_folder_is_evaluated_on_its_held_out_split_only(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = trained
    code, output = evaluate(run, data, tmp_path / "eval")
    assert code == 0, output
    detail = json.loads((tmp_path / "eval" / "mydata.json").read_text())
    evaluated = {row["path"] for row in detail["predictions"]}
    trained_on = {f.path for f in read_train_manifest(run).files}  # type: ignore[union-attr]
    held = discover(data, seed=42).split("test")
    assert evaluated == set(held.paths) and len(evaluated) == 12  # 6 real + 6 fake of 120
    assert not evaluated & trained_on
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["mydata"]
    assert (metrics["n_real"], metrics["n_fake"]) == (6, 6)
    overlap = metrics["training_overlap"]
    assert overlap["n_excluded"] == 0 and overlap["checked_by"] == "path and content (SHA-256)"
    assert "12 of 120 images: the test split" in overlap["split"] and "seed 42" in overlap["split"]
    assert "12 of 120 images: the test split" in output and "none of these images" in output
    html = (tmp_path / "eval" / "report.html").read_text()
    assert "12 of 120 images" in html and "none of these images" in html


def test_copies_of_training_images_are_left_out_by_content(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = trained
    recorded = read_train_manifest(run)
    assert recorded is not None
    train_files = sorted((f for f in recorded.files if f.split == "train"), key=lambda f: f.path)
    other = write_flat(tmp_path / "other", per_class=3, seed=7)  # never seen
    copied = []
    for i, f in enumerate(train_files[:2] + train_files[-2:]):
        target = other / ("Real" if f.label == 0 else "Fake") / f"renamed_{i}.png"
        shutil.copyfile(f.path, target)
        copied.append(target)
    code, output = evaluate(run, other, tmp_path / "eval")
    assert code == 0, output
    detail = json.loads((tmp_path / "eval" / "other.json").read_text())
    evaluated = {Path(row["path"]).name for row in detail["predictions"]}
    assert len(evaluated) == 6 and not evaluated & {p.name for p in copied}
    overlap = json.loads((tmp_path / "eval" / "metrics.json").read_text())["other"]["training_overlap"]
    assert overlap["n_excluded"] == 4 and sorted(overlap["examples"]) == sorted(p.name for p in copied)
    assert {row["path"] for row in detail["training_overlap"]["excluded"]} == {str(p) for p in copied}
    assert all(
        "the same bytes as train file mydata/" in row["why"] for row in detail["training_overlap"]["excluded"]
    )
    assert "4 image(s) left out" in output and "renamed_0.png" in output
    html = (tmp_path / "eval" / "report.html").read_text()
    assert "4 image(s) left out" in html and "renamed_0.png" in html


def test_a_dataset_of_training_images_only_is_refused_in_one_line(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = trained
    code, output = evaluate(run, data, tmp_path / "eval", "--split", "train")
    assert code == 2
    assert "all 96 images to evaluate were used to train or calibrate this model" in output
    assert "Traceback" not in output and not (tmp_path / "eval").exists()


def test_a_model_without_a_training_list_says_so(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, run = trained
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns(TRAIN_MANIFEST, "manifest.csv", "checkpoints"))
    training = load_training_data(bare)
    assert training.files is None and training.check == "not checked" and training.seed == 42
    # the split is still read back (data.json), so the held-out split is what is scored
    manifest, overlap = held_out(data, None, training)
    assert set(manifest.paths) == set(discover(data, seed=42).split("test").paths)
    assert "no list of its training images" in overlap.describe("mydata")


def test_older_runs_fall_back_to_manifest_csv_paths(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, run = trained
    older = tmp_path / "older"
    shutil.copytree(run, older, ignore=shutil.ignore_patterns(TRAIN_MANIFEST, "checkpoints"))
    training = load_training_data(older)
    assert training.check == "path only" and len(training.files or []) == 108
    everything = discover(data, seed=42)
    kept, overlap = exclude_training(everything, training)
    assert len(kept) == 12 and len(overlap.excluded) == 108


def test_a_csv_without_split_column_uses_the_recorded_seed(tmp_path: Path) -> None:
    data = write_flat(tmp_path / "pics", per_class=20)
    with open(data / "list.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        for path in sorted(data.glob("*/*.png")):
            writer.writerow([path.relative_to(data), path.parent.name])
    from deepfake_detector.data.train_manifest import TrainedSource

    training = TrainingData(seed=7, sources=[TrainedSource("pics", str(data), "csv")])
    chosen, note = select_split(data / "list.csv", None, training)
    assert set(chosen.paths) == set(discover(data / "list.csv", seed=7).split("test").paths)
    assert set(chosen.paths) != set(discover(data / "list.csv", seed=0).split("test").paths)
    assert "4 of 40 images" in note and "csv dataset (seed 7" in note


def test_a_fused_model_also_leaves_out_what_its_cnn_trained_on(tmp_path: Path) -> None:
    from deepfake_detector.data.train_manifest import write_train_manifest

    clip_data, cnn_data = (
        write_flat(tmp_path / "a", per_class=10),
        write_flat(tmp_path / "b", per_class=10, seed=3),
    )
    fused, cnn = tmp_path / "fused", tmp_path / "fused" / "cnn"
    write_train_manifest(cnn, [("b", discover(cnn_data, seed=1))], seed=1)
    write_train_manifest(fused, [("a", discover(clip_data, seed=1))], seed=1)
    (fused / "model.json").write_text(json.dumps({"fusion": {"cnn": "cnn"}}))
    (cnn / "model.json").write_text("{}")
    training = load_training_data(fused)
    assert training.check == "path and content (SHA-256)" and len(training.files or []) == 36
    kept, overlap = exclude_training(discover(cnn_data, seed=1), training)
    assert len(kept) == 2 and len(overlap.excluded) == 18  # 10 + 10 images: 16 train, 2 val, 2 test
    (cnn / TRAIN_MANIFEST).unlink()  # the CNN's list missing: nothing is half-checked
    assert load_training_data(fused).check == "not checked"


SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "dfdc" / "Test").is_dir(), reason="../shared/data/dfdc is not here")
@pytest.mark.parametrize("model", ["default", "fast"])
def test_the_shipped_models_carry_their_training_lists(model: str) -> None:
    from deepfake_detector.locate import model_dir

    training = load_training_data(model_dir(model))
    assert training.check == "path and content (SHA-256)"
    manifest, overlap = held_out(SHARED / "dfdc", None, training)
    # dfdc's Test folder holds byte-for-byte copies of some Train/Validation images (other names).
    assert len(overlap.excluded) == 11 and len(manifest) == 2916 - 11
    assert all(why.startswith("the same bytes as ") for _, why in overlap.excluded)
