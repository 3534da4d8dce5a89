"""Dataset discovery: a folder or CSV -> an immutable, hashable manifest of (path, label, split, size)."""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_detector.data.images import IMAGE_EXTENSIONS, UnreadableFile, check_regular_file

CLASS_NAMES = ("real", "fake")  # label index = position: 0 real, 1 fake
SPLITS = ("train", "val", "test")

# Every folder spelling we recognise, in one place.
CLASS_ALIASES: dict[str, str] = {
    **{name: "real" for name in ("real", "0", "genuine", "authentic", "original", "pristine", "true")},
    **{
        name: "fake"
        for name in (
            "fake",
            "1",
            "ai",
            "synthetic",
            "deepfake",
            "deepfakes",
            "generated",
            "manipulated",
            "false",
        )
    },
}
SPLIT_ALIASES: dict[str, str] = {
    **{name: "train" for name in ("train", "training", "trn")},
    **{name: "val" for name in ("val", "valid", "validation", "dev", "development")},
    **{name: "test" for name in ("test", "testing", "tst", "eval", "holdout")},
}
DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


class DatasetError(ValueError):
    """A dataset root or manifest that cannot be understood; names the path and the reason."""


@dataclass(frozen=True)
class Sample:
    path: str  # as given under the dataset root (root joined with the relative path)
    label: int  # 0 real, 1 fake
    split: str
    size: int  # bytes on disk

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.label]


@dataclass(frozen=True)
class Manifest:
    """What a dataset holds. Immutable; `digest()` identifies exactly which files a model saw."""

    root: str
    samples: tuple[Sample, ...]
    layout: str

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def split(self, name: str) -> Manifest:
        name = SPLIT_ALIASES.get(name.lower(), name.lower())
        return Manifest(self.root, tuple(s for s in self.samples if s.split == name), self.layout)

    def sample(self, n: int, seed: int = 0) -> Manifest:
        """A stratified random subset of at most n samples per (split, class)."""
        groups: dict[tuple[str, int], list[Sample]] = {}
        for s in self.samples:
            groups.setdefault((s.split, s.label), []).append(s)
        rng = np.random.default_rng(seed)
        kept: list[Sample] = []
        for key in sorted(groups):
            group = groups[key]
            if len(group) > n:
                idx = np.sort(rng.choice(len(group), size=n, replace=False))
                group = [group[i] for i in idx]
            kept.extend(group)
        return Manifest(self.root, tuple(kept), self.layout)

    @property
    def splits(self) -> list[str]:
        present = {s.split for s in self.samples}
        return [name for name in SPLITS if name in present]

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def counts(self) -> dict[str, dict[str, int]]:
        tally = Counter((s.split, s.class_name) for s in self.samples)
        return {split: {name: tally.get((split, name), 0) for name in CLASS_NAMES} for split in self.splits}

    def relpath(self, sample: Sample) -> str:
        # Fast path for paths discovered under the root (os.path.relpath calls getcwd/abspath twice per
        # path: seconds for 100k samples); same result whenever the remainder is already normalised.
        prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        if sample.path.startswith(prefix):
            rest = sample.path[len(prefix) :]
            if rest and os.path.normpath(rest) == rest:
                return rest
        return os.path.relpath(sample.path, self.root)

    def digest(self) -> str:
        """SHA-256 over (relative path, label, split, size) of every sample, order-independent."""
        h = hashlib.sha256()
        for rel, label, split, size in sorted(
            (self.relpath(s).replace(os.sep, "/"), s.label, s.split, s.size) for s in self.samples
        ):
            # surrogateescape: a file name that is not UTF-8 hashes as its bytes on disk
            h.update(f"{rel}\t{label}\t{split}\t{size}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def to_csv(self, path: str | Path) -> None:
        # Paths are written as their bytes on disk (a non-UTF-8 file name stays exact), as read back.
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label", "split", "size"])
            for s in self.samples:
                writer.writerow([s.path, s.class_name, s.split, s.size])

    def to_parquet(self, path: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "path": [s.path for s in self.samples],
                "label": [s.class_name for s in self.samples],
                "split": [s.split for s in self.samples],
                "size": [s.size for s in self.samples],
            }
        )
        pq.write_table(table, str(path))


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "") if name not in ("0", "1") else name


def _class_of(name: str) -> str | None:
    return CLASS_ALIASES.get(name.strip().lower()) or CLASS_ALIASES.get(_norm(name))


def _split_of(name: str) -> str | None:
    return SPLIT_ALIASES.get(name.strip().lower()) or SPLIT_ALIASES.get(_norm(name))


def _subdirs(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted((e for e in it if e.is_dir(follow_symlinks=True)), key=lambda e: e.name)


def _scan_images(folder: str) -> Iterator[tuple[str, int]]:
    """Recursive os.scandir walk yielding (path, bytes) of image files; never follows symlinked dirs."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    try:
                        info = entry.stat(follow_symlinks=True)
                        # a FIFO or device is kept (the loader names it, never opening it), sizeless
                        size = info.st_size if stat.S_ISREG(info.st_mode) else -1
                    except OSError:
                        size = -1  # dangling link or unreadable: kept, reported when decoded
                    yield entry.path, size
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _class_folders(folder: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in _subdirs(folder):
        cls = _class_of(entry.name)
        if cls is not None:
            found.setdefault(cls, []).append(entry.path)
    return found


def _collect(class_dirs: dict[str, list[str]], split: str) -> list[Sample]:
    samples = []
    for cls, dirs in sorted(class_dirs.items()):
        label = CLASS_NAMES.index(cls)
        for d in dirs:
            samples.extend(Sample(p, label, split, size) for p, size in _scan_images(d))
    return samples


def assign_splits(
    samples: Sequence[Sample], fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS, seed: int = 0
) -> list[Sample]:
    """Deterministic, stratified train/val/test assignment (by class, after a seeded shuffle)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6:
        raise DatasetError(f"split fractions must be three numbers summing to 1, got {fractions}")
    out: list[Sample] = []
    for label in (0, 1):
        group = sorted((s for s in samples if s.label == label), key=lambda s: s.path)
        order = np.random.default_rng(seed + label).permutation(len(group))
        n_train = int(round(fractions[0] * len(group)))
        n_val = int(round(fractions[1] * len(group)))
        for rank, i in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            s = group[i]
            out.append(Sample(s.path, s.label, split, s.size))
    return sorted(out, key=lambda s: (SPLITS.index(s.split), s.label, s.path))


def read_csv_manifest(
    csv_path: str | Path, seed: int = 0, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
) -> Manifest:
    """A CSV with columns path,label[,split]; relative paths are relative to the CSV's folder."""
    csv_path = Path(csv_path)
    base = csv_path.parent
    try:
        check_regular_file(csv_path, None, what="a manifest CSV")  # a FIFO or device would hang open()
    except UnreadableFile as exc:
        raise DatasetError(str(exc)) from exc
    # utf-8-sig: a CSV saved by Excel starts with a byte-order mark, which is not part of "path".
    with open(csv_path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.DictReader(fh)
        try:
            samples, has_split = _csv_rows(reader, csv_path, base)
        except csv.Error as exc:  # a NUL byte, a field over the csv module's limit, a broken quote
            raise DatasetError(f"{csv_path}:{reader.line_num}: not a readable CSV row ({exc})") from exc
    if not samples:
        raise DatasetError(f"{csv_path}: manifest has no rows")
    if not has_split:
        samples = assign_splits(samples, fractions, seed=seed)
    return Manifest(str(base), tuple(samples), "csv")


def _csv_rows(reader: csv.DictReader, csv_path: Path, base: Path) -> tuple[list[Sample], bool]:
    """Samples from a manifest CSV's rows, and whether it has a split column (errors name file:line)."""
    samples: list[Sample] = []
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "path" not in fields or "label" not in fields:
        raise DatasetError(f"{csv_path}: a manifest CSV needs 'path' and 'label' columns, has {fields}")
    has_split = "split" in fields
    for line_no, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        cls = _class_of(row["label"])
        if cls is None:
            raise DatasetError(f"{csv_path}:{line_no}: unknown label {row['label']!r}")
        split = "train"
        if has_split:
            split = _split_of(row.get("split", "")) or ""
            if not split:
                raise DatasetError(f"{csv_path}:{line_no}: unknown split {row.get('split')!r}")
        if "\x00" in row["path"]:
            raise DatasetError(f"{csv_path}:{line_no}: the path holds a NUL byte, which no file name can")
        path = row["path"] if os.path.isabs(row["path"]) else str(base / row["path"])
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        samples.append(Sample(path, CLASS_NAMES.index(cls), split, size))
    return samples, has_split


def paths_in_several_splits(manifest: Manifest) -> list[str]:
    """Files a manifest lists in more than one split (leakage between training and evaluation)."""
    splits: dict[str, set[str]] = {}
    for sample in manifest:
        splits.setdefault(os.path.realpath(sample.path), set()).add(sample.split)
    return sorted(path for path, names in splits.items() if len(names) > 1)


_NEEDED_FOR = {"train": "to learn from", "val": "to calibrate the scores and choose the threshold"}


def check_both_classes(manifest: Manifest, splits: Sequence[str] = ("train", "val")) -> None:
    """DatasetError unless every split in `splits` holds real and fake images: training needs both in
    train, calibration in val. Checked on the file listing, before any image is decoded or epoch run."""
    counts = manifest.counts()
    for split in splits:
        real, fake = (counts.get(split, {}).get(name, 0) for name in CLASS_NAMES)
        if not real or not fake:
            raise DatasetError(
                f"{manifest.root}: the {split} split has {real} real and {fake} fake images; both classes "
                f"are needed ({_NEEDED_FOR.get(split, 'to score')})"
            )


def discover(
    root: str | Path, *, seed: int = 0, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
) -> Manifest:
    """Recognise a dataset: Kaggle split/class folders, a flat class-folder root, or a CSV manifest.

    Flat roots (and CSVs without a split column) are split deterministically: seeded, stratified,
    by `fractions` (train, val, test; 80/10/10 by default).
    """
    root = str(root)
    if os.path.isfile(root):
        if root.lower().endswith(".csv"):
            return read_csv_manifest(root, seed=seed, fractions=fractions)
        raise DatasetError(f"{root}: expected a dataset folder or a .csv manifest")
    if not os.path.isdir(root):
        if os.path.exists(root):  # a FIFO or a device: say which, never open it
            try:
                check_regular_file(root, None, what="a dataset")
            except UnreadableFile as exc:
                raise DatasetError(str(exc)) from exc
        raise DatasetError(f"{root}: no such folder")

    split_dirs = [(split, e.path) for e in _subdirs(root) if (split := _split_of(e.name))]
    samples: list[Sample] = []
    if split_dirs:
        for split, path in split_dirs:
            samples.extend(_collect(_class_folders(path), split))
        layout = "splits"
    else:
        class_dirs = _class_folders(root)
        if class_dirs:
            samples = assign_splits(_collect(class_dirs, "train"), fractions, seed=seed)
            layout = "flat"
        else:
            csvs = sorted(Path(root).glob("*.csv"))
            if len(csvs) == 1:
                return read_csv_manifest(csvs[0], seed=seed, fractions=fractions)
            raise DatasetError(
                f"{root}: no split folders (Train/Validation/Test), no class folders (Real/Fake) "
                "and no single manifest CSV found"
            )
    if not samples:
        raise DatasetError(f"{root}: found the folder layout but no image files in it")
    return Manifest(root, tuple(samples), layout)


def discover_split(root: str | Path, split: str | None = None, *, seed: int = 0) -> Manifest:
    """The samples to evaluate on: for a split layout its `split` (default test), for a class-folder
    root with no split folders every image in it (Real and/or Fake may be missing)."""
    root_s = str(root)
    if os.path.isdir(root_s) and not any(_split_of(e.name) for e in _subdirs(root_s)):
        class_dirs = _class_folders(root_s)
        if class_dirs:
            samples = _collect(class_dirs, split or "test")
            if not samples:
                raise DatasetError(f"{root_s}: class folders hold no image files")
            return Manifest(root_s, tuple(samples), "classes")
    manifest = discover(root, seed=seed)
    chosen = manifest.split(split or "test")
    if not len(chosen):
        raise DatasetError(f"{root_s}: has no '{split or 'test'}' split (has {manifest.splits})")
    return chosen
