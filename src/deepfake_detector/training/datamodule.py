"""Training data: every image decoded once at the training size into a uint8 cache, then augmented."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader, Dataset, Subset, WeightedRandomSampler

from deepfake_detector.data import DatasetError, Manifest, UnreadableImage, load_image
from deepfake_detector.fileio import atomic_write_json, printable
from deepfake_detector.spec import ModelSpec, preprocess_batch
from deepfake_detector.training.self_blend import self_blend


def decode_all(
    paths: Sequence[str],
    size: int,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[UnreadableImage]]:
    """Decode `paths` at size x size into one (N, S, S, 3) uint8 array; unreadable files stay black."""
    arrays = out if out is not None else np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    errors: list[UnreadableImage] = []

    def one(i: int) -> UnreadableImage | None:
        try:
            arrays[i] = load_image(paths[i], size=size)
        except UnreadableImage as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), 512):
            chunk = range(start, min(start + 512, len(paths)))
            errors.extend(e for e in pool.map(one, chunk) if e is not None)
            if progress:
                progress(len(chunk))
    return arrays, errors


def cached_arrays(
    manifest: Manifest, size: int, cache_dir: str | None, workers: int = 2
) -> tuple[np.ndarray, list[UnreadableImage]]:
    """Decoded images for a manifest (unreadable files black) and the unreadable files, from an
    on-disk .npy cache keyed by content listing and size (the unreadable list in a .json beside it)."""
    if not cache_dir:
        return decode_all(manifest.paths, size, workers)
    key = hashlib.sha256(f"{manifest.digest()}:{size}".encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"images-{key}-{size}px.npy"
    listing = path.with_suffix(".unreadable.json")
    if path.is_file() and listing.is_file():
        failed = [UnreadableImage(p, reason) for p, reason in json.loads(listing.read_text())]
        return np.load(path, mmap_mode="r"), failed
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    arrays = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(manifest), size, size, 3))
    _, failed = decode_all(manifest.paths, size, workers, out=arrays)
    arrays.flush()
    del arrays
    atomic_write_json(listing, [[e.path, e.reason] for e in failed])  # before the .npy: a cache has both
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r"), failed


def readable_only(
    arrays: np.ndarray, manifest: Manifest, failed: Sequence[UnreadableImage], split: str
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of a split without its unreadable files (a copy only when some failed)."""
    labels = manifest.labels
    if not failed:
        return arrays, labels
    bad = {e.path for e in failed}
    keep = np.array([p not in bad for p in manifest.paths], dtype=bool)
    if len(np.unique(labels[keep])) < 2:
        raise DatasetError(
            f"{manifest.root}: after leaving out {len(bad)} unreadable files the {split} split has "
            f"{int((labels[keep] == 0).sum())} real and {int((labels[keep] == 1).sum())} fake images; "
            "both classes are needed"
        )
    return np.asarray(arrays[keep]), labels[keep]


@rank_zero_only
def report_unreadable(failed: Sequence[UnreadableImage], total: int, shown: int = 20) -> None:
    """Name every file left out (up to `shown` of them) on stderr, with the reason."""
    if not failed:
        return
    lines = [f"warning: {len(failed)} of {total} images could not be read and are left out of training:"]
    lines += [f"  {printable(str(e))}" for e in failed[:shown]]
    if len(failed) > shown:
        lines.append(f"  ... and {len(failed) - shown} more (all in the run's unreadable.json)")
    print("\n".join(lines), file=sys.stderr, flush=True)


class ArrayDataset(Dataset):
    """Cached uint8 images + labels -> (normalised CHW float tensor, float label).

    With `self_blend_p` > 0, that fraction of the fake samples is replaced by a self-blended
    pseudo-fake made from a random real image (training/self_blend.py); class counts stay the same.
    """

    def __init__(
        self, arrays: np.ndarray, labels: np.ndarray, spec: ModelSpec, augment=None, self_blend_p: float = 0.0
    ):
        self.arrays, self.labels, self.spec, self.augment = arrays, labels, spec, augment
        self.self_blend_p = self_blend_p
        self._real_indices = np.flatnonzero(np.asarray(labels) == 0)
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def rng(self) -> np.random.Generator:
        # Created lazily in each loader worker: torch gives every worker its own seeded initial seed.
        if self._rng is None:
            self._rng = np.random.default_rng(torch.initial_seed() % 2**63)
        return self._rng

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = np.asarray(self.arrays[i])
        blend = self.self_blend_p and self.labels[i] == 1 and len(self._real_indices)
        if blend and self.rng.random() < self.self_blend_p:
            real = np.asarray(self.arrays[self.rng.choice(self._real_indices)])
            img = self_blend(real, self.rng)
        if self.augment is not None:
            img = self.augment(image=img)["image"]
        x = preprocess_batch(img[None], self.spec)[0]
        return torch.from_numpy(x), torch.tensor(float(self.labels[i]))


class DeepfakeDataModule(L.LightningDataModule):
    def __init__(
        self,
        train: Manifest,
        val: Manifest,
        spec: ModelSpec,
        batch_size: int,
        augment=None,
        self_blend_p: float = 0.0,
        balance: str = "none",
        workers: int = 0,
        cache_dir: str | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.train_manifest, self.val_manifest, self.spec = train, val, spec
        self.batch_size, self.augment, self.balance = batch_size, augment, balance
        self.self_blend_p = self_blend_p
        self.workers, self.cache_dir, self.seed = workers, cache_dir, seed
        self._train: ArrayDataset | None = None
        self._val: ArrayDataset | None = None
        self.unreadable: list[UnreadableImage] = []  # filled by setup(): files left out, with reasons

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node while the other ranks wait, so under DDP the
        # on-disk cache is decoded once per node; every rank's setup() then maps that same file.
        if self.cache_dir:
            for manifest in (self.train_manifest, self.val_manifest):
                cached_arrays(manifest, self.spec.img_size, self.cache_dir, max(2, os.cpu_count() or 2))

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            size = self.spec.img_size
            decode_workers = max(2, os.cpu_count() or 2)
            train_arrays, train_failed = cached_arrays(
                self.train_manifest, size, self.cache_dir, decode_workers
            )
            val_arrays, val_failed = cached_arrays(self.val_manifest, size, self.cache_dir, decode_workers)
            self.unreadable = [*train_failed, *val_failed]
            report_unreadable(self.unreadable, len(self.train_manifest) + len(self.val_manifest))
            train_arrays, train_labels = readable_only(
                train_arrays, self.train_manifest, train_failed, "train"
            )
            val_arrays, val_labels = readable_only(val_arrays, self.val_manifest, val_failed, "val")
            self._train = ArrayDataset(
                train_arrays,
                train_labels,
                self.spec,
                self.augment,
                self.self_blend_p,
            )
            self._val = ArrayDataset(
                val_arrays,
                val_labels,
                self.spec,
            )

    @property
    def val_dataset(self) -> ArrayDataset:
        self.setup()
        assert self._val is not None
        return self._val

    def _loader(self, dataset: Dataset, shuffle: bool, sampler=None) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=generator,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        assert self._train is not None
        sampler = None
        if self.balance == "sampler":
            labels = self._train.labels
            counts = np.bincount(labels, minlength=2).astype(np.float64)
            weights = (1.0 / np.maximum(counts, 1))[labels]
            sampler = WeightedRandomSampler(
                torch.as_tensor(weights), num_samples=len(labels), replacement=True
            )
        return self._loader(self._train, shuffle=True, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        assert self._val is not None
        # A fixed, seeded order: with val_fraction < 1 Lightning runs only the first batches, and
        # the manifest lists one class after the other, so they must be a random mix of both
        # (the notebook's validation generator shuffles too).
        order = np.random.default_rng(self.seed).permutation(len(self._val)).tolist()
        return self._loader(Subset(self._val, order), shuffle=False)
