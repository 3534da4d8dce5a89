"""Dataset discovery: every folder layout, CSV manifests, deterministic splits, digest, saving, errors
and scanning speed. Files are empty or tiny: discovery never decodes images."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from deepfake_detector.data.manifest import (
    DatasetError,
    Manifest,
    assign_splits,
    discover,
    discover_split,
    read_csv_manifest,
)


def touch(folder: Path, n: int, ext: str = ".jpg", size: int = 0, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}{i:05d}{ext}"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def kaggle_tree(
    root: Path, split_names=("Train", "Validation", "Test"), class_names=("Real", "Fake")
) -> Path:
    sizes = {split_names[0]: (6, 4), split_names[1]: (3, 2), split_names[2]: (2, 3)}
    for split, (n_real, n_fake) in sizes.items():
        touch(root / split / class_names[0], n_real)
        touch(root / split / class_names[1], n_fake)
    return root


EXPECTED_COUNTS = {
    "train": {"real": 6, "fake": 4},
    "val": {"real": 3, "fake": 2},
    "test": {"real": 2, "fake": 3},
}


@pytest.mark.parametrize(
    "split_names",
    [
        ("Train", "Validation", "Test"),
        ("train", "val", "test"),
        ("TRAIN", "VALID", "TEST"),
        ("training", "dev", "eval"),
    ],
)
def test_kaggle_split_layout_in_any_case(tmp_path, split_names):
    manifest = discover(kaggle_tree(tmp_path / "data", split_names))
    assert manifest.layout == "splits"
    assert manifest.counts() == EXPECTED_COUNTS
    assert manifest.splits == ["train", "val", "test"]
    # paths are exactly root joined with the relative path, as given
    for sample in manifest:
        assert sample.path.startswith(str(tmp_path / "data") + os.sep)
        assert os.path.isfile(sample.path)
        assert sample.size == 0


@pytest.mark.parametrize(
    ("real_name", "fake_name"),
    [
        ("real", "fake"),
        ("REAL", "FAKE"),
        ("0", "1"),
        ("Real", "ai"),
        ("genuine", "synthetic"),
        ("real", "AI"),
    ],
)
def test_class_folder_aliases(tmp_path, real_name, fake_name):
    manifest = discover(kaggle_tree(tmp_path / "d", ("train", "val", "test"), (real_name, fake_name)))
    assert manifest.counts() == EXPECTED_COUNTS
    for sample in manifest:
        folder = Path(sample.path).parent.name
        assert sample.label == (0 if folder == real_name else 1)
        assert sample.class_name == ("real" if folder == real_name else "fake")


def test_labels_and_paths_properties(tmp_path):
    manifest = discover(kaggle_tree(tmp_path / "d"))
    assert list(manifest.labels) == [s.label for s in manifest.samples]
    assert manifest.paths == [s.path for s in manifest.samples]
    assert manifest.labels.sum() == 4 + 2 + 3


def test_non_image_files_and_unknown_folders_are_ignored(tmp_path):
    root = kaggle_tree(tmp_path / "d")
    (root / "Train" / "Real" / "notes.txt").write_text("hello")
    (root / "Train" / "Real" / ".DS_Store").write_bytes(b"")
    touch(root / "Train" / "Cats", 5)
    touch(root / "Extras" / "Real", 5)
    nested = touch(root / "Train" / "Fake" / "video1", 2, ext=".PNG")
    manifest = discover(root)
    assert manifest.counts()["train"] == {"real": 6, "fake": 6}
    assert {str(p) for p in nested} <= set(manifest.paths)


def test_flat_real_fake_folder_split_is_deterministic_and_stratified(tmp_path):
    root = tmp_path / "flat"
    touch(root / "Real", 50)
    touch(root / "Fake", 30)
    first, again = discover(root, seed=3), discover(root, seed=3)
    assert first.layout == "flat"
    assert first.samples == again.samples
    assert first.counts() == {
        "train": {"real": 40, "fake": 24},
        "val": {"real": 5, "fake": 3},
        "test": {"real": 5, "fake": 3},
    }
    every_file = {str(p) for p in (root / "Real").iterdir()} | {str(p) for p in (root / "Fake").iterdir()}
    assert len(first.paths) == 80 and set(first.paths) == every_file  # every file exactly once
    other = discover(root, seed=4)
    assert other.counts() == first.counts()
    assert {s.path: s.split for s in other} != {s.path: s.split for s in first}


def test_split_assignment_does_not_depend_on_listing_order(tmp_path):
    root = tmp_path / "flat"
    touch(root / "real", 20)
    touch(root / "fake", 20)
    samples = discover(root).samples
    assert assign_splits(list(reversed(samples))) == assign_splits(list(samples))


def test_split_fractions_are_validated(tmp_path):
    root = tmp_path / "flat"
    touch(root / "real", 4)
    with pytest.raises(DatasetError, match="fractions"):
        assign_splits(discover(root).samples, fractions=(0.5, 0.2, 0.2))


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_csv_manifest_with_split(tmp_path):
    touch(tmp_path / "imgs", 4)
    csv_path = write_csv(
        tmp_path / "list.csv",
        [
            ["path", "label", "split"],
            ["imgs/img00000.jpg", "real", "train"],
            ["imgs/img00001.jpg", "FAKE", "Validation"],
            ["imgs/img00002.jpg", "0", "test"],
            [str(tmp_path / "imgs" / "img00003.jpg"), "1", "test"],
        ],
    )
    manifest = discover(csv_path)
    assert manifest.layout == "csv"
    assert manifest.counts() == {
        "train": {"real": 1, "fake": 0},
        "val": {"real": 0, "fake": 1},
        "test": {"real": 1, "fake": 1},
    }
    assert manifest.samples[0].path == str(tmp_path / "imgs" / "img00000.jpg")  # relative to the CSV
    assert discover(tmp_path) == manifest  # a folder holding one CSV is read through it


def test_csv_manifest_without_split_is_split_deterministically(tmp_path):
    touch(tmp_path / "a", 20)
    rows = [["path", "label"]] + [[f"a/img{i:05d}.jpg", "real" if i % 2 else "fake"] for i in range(20)]
    csv_path = write_csv(tmp_path / "m.csv", rows)
    manifest = read_csv_manifest(csv_path, seed=1)
    assert manifest.counts() == {
        "train": {"real": 8, "fake": 8},
        "val": {"real": 1, "fake": 1},
        "test": {"real": 1, "fake": 1},
    }
    assert read_csv_manifest(csv_path, seed=1) == manifest


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["file", "label"], ["a.jpg", "real"]], "'path' and 'label'"),
        ([["path", "label"], ["a.jpg", "maybe"]], ":2: unknown label 'maybe'"),
        (
            [["path", "label", "split"], ["a.jpg", "real", "train"], ["b.jpg", "fake", "later"]],
            ":3: unknown split",
        ),
        ([["path", "label"]], "no rows"),
    ],
)
def test_bad_csv_manifest(tmp_path, rows, message):
    csv_path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetError, match=message) as info:
        discover(csv_path)
    assert str(csv_path) in str(info.value)


def test_digest_is_stable_and_sensitive(tmp_path):
    root = kaggle_tree(tmp_path / "d")
    digest = discover(root).digest()
    assert discover(root).digest() == digest
    manifest = discover(root)
    shuffled = Manifest(manifest.root, tuple(reversed(manifest.samples)), manifest.layout)
    assert shuffled.digest() == digest  # order-independent
    moved_root = tmp_path / "moved"
    root.rename(moved_root)
    assert discover(moved_root).digest() == digest  # relative paths: the root's location does not matter

    (moved_root / "Train" / "Real" / "img00000.jpg").write_bytes(b"changed")
    changed_size = discover(moved_root).digest()
    assert changed_size != digest
    (moved_root / "Train" / "Real" / "img00000.jpg").rename(moved_root / "Train" / "Fake" / "img00000.jpg")
    relabelled = discover(moved_root).digest()
    assert relabelled not in (digest, changed_size)
    touch(moved_root / "Test" / "Real", 1, prefix="new")
    assert discover(moved_root).digest() not in (digest, changed_size, relabelled)


def test_save_csv_and_parquet(tmp_path):
    import pyarrow.parquet as pq

    manifest = discover(kaggle_tree(tmp_path / "d"))
    manifest.to_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["label"], r["split"], int(r["size"])) for r in rows] == [
        (s.path, s.class_name, s.split, s.size) for s in manifest
    ]
    assert read_csv_manifest(tmp_path / "m.csv").counts() == manifest.counts()  # and it reads back

    manifest.to_parquet(tmp_path / "m.parquet")
    table = pq.read_table(tmp_path / "m.parquet").to_pydict()
    assert table["path"] == manifest.paths
    assert table["label"] == [s.class_name for s in manifest]
    assert table["split"] == [s.split for s in manifest]


def test_manifest_split_and_sample(tmp_path):
    manifest = discover(kaggle_tree(tmp_path / "d"))
    assert manifest.split("Validation").counts() == {"val": EXPECTED_COUNTS["val"]}
    small = manifest.sample(2, seed=5)
    assert small.counts() == {split: {"real": 2, "fake": 2} for split in ("train", "val", "test")}
    assert manifest.sample(2, seed=5) == small
    assert set(small.paths) <= set(manifest.paths)


def test_discover_split_for_evaluation(tmp_path):
    root = kaggle_tree(tmp_path / "d")
    assert discover_split(root).counts() == {"test": EXPECTED_COUNTS["test"]}
    assert discover_split(root, "val").counts() == {"val": EXPECTED_COUNTS["val"]}
    only_fake = tmp_path / "only"
    touch(only_fake / "Fake", 3)
    assert discover_split(only_fake).counts() == {"test": {"real": 0, "fake": 3}}


@pytest.mark.parametrize("kind", ["empty", "unknown", "missing", "not_csv", "no_images"])
def test_clear_error_for_unusable_roots(tmp_path, kind):
    root = tmp_path / "root"
    if kind == "empty":
        root.mkdir()
    elif kind == "unknown":
        touch(root / "cats", 3)
        touch(root / "dogs", 3)
    elif kind == "not_csv":
        root = tmp_path / "data.txt"
        root.write_text("x")
    elif kind == "no_images":
        (root / "Train" / "Real").mkdir(parents=True)
        (root / "Train" / "Real" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError) as info:
        discover(root)
    assert str(root) in str(info.value)


def test_scans_100k_files_in_seconds(tmp_path):
    folder = tmp_path / "big" / "Real"
    folder.mkdir(parents=True)
    for i in range(100_000):
        os.close(os.open(folder / f"{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
    # CPU time of this process (system calls included), so a busy shared machine does not fail it
    started = time.process_time()
    manifest = discover(tmp_path / "big")
    elapsed = time.process_time() - started
    assert len(manifest) == 100_000
    assert elapsed < 10, f"discovering 100k files took {elapsed:.1f} s of CPU"
