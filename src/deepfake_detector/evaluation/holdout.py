"""Score only what training held out.

A flat Real/Fake folder or a CSV without a split column is cut into train/val/test by a seeded
split when a model trains on it; evaluating that dataset again uses the same seed and fractions
(recorded in the run folder) and so its test split. Then any image the model trained or calibrated
on is dropped: the same resolved path as a recorded training file, or the same bytes (SHA-256,
computed only for images whose byte size equals some training file's). What was dropped is
reported; a dataset with nothing left is refused.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_detector.data.manifest import (
    DEFAULT_SPLIT_FRACTIONS,
    DatasetError,
    Manifest,
    Sample,
    discover,
    discover_split,
)
from deepfake_detector.data.train_manifest import (
    TRAIN_MANIFEST,
    TrainedFile,
    TrainedSource,
    hash_files,
    read_train_manifest,
)

EXAMPLES = 5  # excluded file names shown in the CLI output and the report
SEEDED_LAYOUTS = ("flat", "csv")


@dataclass
class TrainingData:
    """What a model folder says about its training data: the split that cut it and, for runs
    trained since train_manifest.json.gz exists, every training file."""

    folder: str = ""
    seed: int | None = None
    fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS
    sources: list[TrainedSource] = field(default_factory=list)
    files: list[TrainedFile] | None = None  # None: no list recorded
    hashed: bool = False  # files carry SHA-256 (else matched by path only)

    @property
    def check(self) -> str:
        """How overlap is checked: by path and content, by path only, or not at all."""
        if self.files is None:
            return "not checked"
        return "path and content (SHA-256)" if self.hashed else "path only"

    def source_for(self, root: str | Path) -> TrainedSource | None:
        """The recorded training source this dataset root is: same resolved folder; without a file
        list (older runs), also the same folder name."""
        resolved = _resolved_root(root)
        for source in self.sources:
            if os.path.realpath(source.root) == resolved:
                return source
        if self.files is None:
            name = Path(resolved).name
            return next((s for s in self.sources if s.name == name), None)
        return None


def _resolved_root(root: str | Path) -> str:
    # A CSV manifest's samples live under the CSV's folder, which is what training records.
    path = os.path.realpath(str(root))
    return os.path.dirname(path) if os.path.isfile(path) else path


def load_training_data(folder: str | Path | None) -> TrainingData:
    """Read train_manifest.json.gz, else data.json + config.yaml + manifest.csv (older runs). A model
    fused with a CNN (model.json `fusion`) also saw what that CNN trained on: its files are added."""
    if folder is None or not str(folder):
        return TrainingData()
    folder = Path(folder)
    training = _own_training_data(folder)
    cnn = _read_json(folder / "model.json").get("fusion", {}).get("cnn")
    if cnn and training.files is not None:
        from deepfake_detector.locate import ModelNotFound, model_dir

        local = folder / str(cnn)  # as models/clip/fusion.py finds it: beside the model first
        try:
            fused = _own_training_data(local if (local / "model.json").is_file() else model_dir(cnn))
        except ModelNotFound:
            fused = TrainingData()
        # Without the CNN's list, what it trained on cannot be checked: say so rather than half-check.
        training.files = None if fused.files is None else training.files + fused.files
        training.hashed = training.hashed and fused.hashed
    return training


def _own_training_data(folder: Path) -> TrainingData:
    recorded = read_train_manifest(folder)
    if recorded is not None:
        hashed = any(f.sha256 for f in recorded.files)
        return TrainingData(
            str(folder), recorded.seed, recorded.fractions, recorded.sources, recorded.files, hashed
        )
    data = _read_json(folder / "data.json")
    seed = (data.get("split") or {}).get("seed", _config_seed(folder))
    fractions = tuple((data.get("split") or {}).get("fractions", DEFAULT_SPLIT_FRACTIONS))
    entries = data.get("sources") or ([data] if "root" in data else [])
    sources = [
        TrainedSource(
            str(e.get("name") or e.get("source") or Path(e["root"]).name), e["root"], e.get("layout", "")
        )
        for e in entries
        if "root" in e
    ]
    return TrainingData(str(folder), seed, fractions, sources, _manifest_csv_files(folder))  # type: ignore[arg-type]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _config_seed(folder: Path) -> int | None:
    import yaml

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    seed = config.get("seed") if isinstance(config, dict) else None
    return seed if isinstance(seed, int) else None


def _manifest_csv_files(folder: Path) -> list[TrainedFile] | None:
    """The train/val files of an older CNN run's manifest.csv (paths as given when it trained)."""
    try:
        with open(folder / "manifest.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None
    label = {"real": 0, "fake": 1}
    return [
        TrainedFile("", os.path.realpath(row["path"]), os.path.basename(row["path"]),
                    label.get(row.get("label", ""), -1), row.get("split", ""), int(row.get("size") or -1), "")
        for row in rows
        if row.get("path")
    ]  # fmt: skip


def select_split(root: str | Path, split: str | None, training: TrainingData) -> tuple[Manifest, str]:
    """The samples of `root` to evaluate and a note on how they were chosen.

    A flat or CSV dataset the model trained on: the split `split` (default test) of the same seeded
    cut training made. Anything else: as data.manifest.discover_split (a Kaggle layout's split, or
    every image of a class-folder root the model never trained on)."""
    if training.seed is None or training.source_for(root) is None:
        return discover_split(root, split), ""
    # A CSV with a split column keeps its own splits; the seed cuts the others as training did.
    manifest = discover(root, seed=training.seed, fractions=training.fractions)
    if manifest.layout not in SEEDED_LAYOUTS:  # split folders: the folder says which split
        return discover_split(root, split), ""
    chosen = manifest.split(split or "test")
    if not len(chosen):
        raise DatasetError(f"{root}: has no '{split or 'test'}' split (has {manifest.splits})")
    cut = "/".join(f"{round(100 * f)}" for f in training.fractions)
    note = (
        f"{len(chosen)} of {len(manifest)} images: the {split or 'test'} split as training cut this "
        f"{manifest.layout} dataset (seed {training.seed}, train/val/test {cut})"
    )
    return chosen, note


@dataclass
class Overlap:
    """Evaluated images that the model trained or calibrated on, and how that was checked."""

    check: str
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    split_note: str = ""

    def to_json(self, full: bool = True) -> dict[str, Any]:
        """metrics.json (full=False) has the count and a few names; <dataset>.json every file."""
        entry: dict[str, Any] = {
            "checked_by": self.check,
            "n_excluded": len(self.excluded),
            "examples": [Path(path).name for path, _ in self.excluded[:EXAMPLES]],
            "split": self.split_note,
        }
        if full:
            entry["excluded"] = [{"path": path, "why": why} for path, why in self.excluded]
        return entry

    def describe(self, name: str) -> str:
        return describe_overlap(name, self.to_json(full=False))


def describe_overlap(name: str, entry: dict[str, Any]) -> str:
    """One line for the CLI output and the report, from Overlap.to_json (metrics.json's entry)."""
    check, count = entry.get("checked_by", "not checked"), int(entry.get("n_excluded", 0))
    if check == "not checked":
        return (
            f"{name}: this model has no list of its training images to check against; "
            "overlap with them was not checked"
        )
    if not count:
        return f"{name}: none of these images is one the model trained or calibrated on (checked by {check})"
    shown = ", ".join(entry.get("examples", []))
    more = ", ..." if count > len(entry.get("examples", [])) else ""
    return (
        f"{name}: {count} image(s) left out, the model trained or calibrated on them "
        f"(same {'file or same bytes' if 'content' in check else 'file'}): {shown}{more}"
    )


def exclude_training(manifest: Manifest, training: TrainingData) -> tuple[Manifest, Overlap]:
    """`manifest` without the images in the model's training list (same path or same bytes)."""
    overlap = Overlap(training.check)
    if training.files is None:
        return manifest, overlap
    by_path = {f.path: f for f in training.files}
    by_hash = {f.sha256: f for f in training.files if f.sha256}
    sizes = {f.size for f in training.files if f.sha256 and f.size >= 0}
    kept: list[Sample] = []
    candidates: list[Sample] = []
    for sample in manifest:
        seen = by_path.get(os.path.realpath(sample.path)) or by_path.get(os.path.abspath(sample.path))
        if seen is not None:
            overlap.excluded.append((sample.path, f"the same file ({seen.split})"))
        elif sample.size >= 0 and sample.size in sizes:
            candidates.append(sample)
        else:
            kept.append(sample)
    for sample, digest in zip(candidates, hash_files([s.path for s in candidates]), strict=True):
        seen = by_hash.get(digest) if digest else None
        if seen is None:
            kept.append(sample)
        else:
            where = f"{seen.source}/{seen.relpath}" if seen.source else seen.relpath
            overlap.excluded.append((sample.path, f"the same bytes as {seen.split} file {where}"))
    order = {s.path: i for i, s in enumerate(manifest)}
    kept.sort(key=lambda s: order[s.path])
    overlap.excluded.sort()
    return Manifest(manifest.root, tuple(kept), manifest.layout), overlap


def held_out(root: str | Path, split: str | None, training: TrainingData) -> tuple[Manifest, Overlap]:
    """select_split then exclude_training; DatasetError (one line) when nothing is left."""
    chosen, note = select_split(root, split, training)
    kept, overlap = exclude_training(chosen, training)
    overlap.split_note = note
    if not len(kept):
        raise DatasetError(
            f"{root}: all {len(chosen)} images to evaluate were used to train or calibrate this model "
            f"(same path or same bytes as files in its {TRAIN_MANIFEST}); nothing held out to score"
        )
    return kept, overlap
