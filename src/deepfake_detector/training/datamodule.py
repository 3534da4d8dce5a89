"""Training data: every image decoded and cut once (data/region_cache.py) into a uint8 cache, then augmented."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    Subset,
    WeightedRandomSampler,
)

from deepfake_detector.data import DatasetError, Manifest, UnreadableImage
from deepfake_detector.data.crop import FacesMode, summarize_regions
from deepfake_detector.data.region_cache import CachedRegions, cached_regions
from deepfake_detector.fileio import printable
from deepfake_detector.spec import ModelSpec, preprocess_batch
from deepfake_detector.training.self_blend import self_blend


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


def batch_count(n_samples: int, batch_size: int, merge_single: bool = False) -> int:
    """How many batches `n_samples` make (the last one partial); with `merge_single`, a last batch of
    exactly one sample is not a batch of its own (MergeSingleBatchSampler adds it to the one before)."""
    batches = math.ceil(n_samples / batch_size)
    if merge_single and batches > 1 and batch_size > 1 and n_samples % batch_size == 1:
        batches -= 1
    return batches


class MergeSingleBatchSampler(BatchSampler):
    """BatchSampler(drop_last=False), except that a last batch of one sample joins the batch before it.

    BatchNorm cannot normalise a batch of one in training mode (PyTorch raises "Expected more than 1
    value per channel"), and dropping the sample would leave it out of every epoch where it comes
    last. Keeps BatchSampler's signature so Lightning can put a DistributedSampler into it under DDP.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool = False):
        super().__init__(sampler, batch_size, drop_last)

    def __iter__(self):
        if self.drop_last:
            yield from super().__iter__()
            return
        pending: list[int] | None = None
        for batch in super().__iter__():
            if pending is not None and len(batch) == 1 < self.batch_size:
                batch = pending + batch
            elif pending is not None:
                yield pending
            pending = batch
        if pending is not None:
            yield pending

    def __len__(self) -> int:
        if self.drop_last:
            return super().__len__()
        return batch_count(len(self.sampler), self.batch_size, merge_single=True)  # type: ignore[arg-type]


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
        faces: FacesMode = "auto",
    ):
        super().__init__()
        self.faces = faces
        self.train_manifest, self.val_manifest, self.spec = train, val, spec
        self.batch_size, self.augment, self.balance = batch_size, augment, balance
        self.self_blend_p = self_blend_p
        self.workers, self.cache_dir, self.seed = workers, cache_dir, seed
        self._train: ArrayDataset | None = None
        self._val: ArrayDataset | None = None
        self.unreadable: list[UnreadableImage] = []  # filled by setup(): files left out, with reasons
        self.face_summary: dict[str, dict] = {}  # filled by setup(): per split, what face finding saw

    def _regions(self, manifest: Manifest) -> CachedRegions:
        workers = max(2, os.cpu_count() or 2)
        return cached_regions(
            manifest, self.spec.img_size, self.cache_dir, self.spec.crop, self.faces, workers
        )

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node while the other ranks wait, so under DDP the
        # on-disk cache is decoded once per node; every rank's setup() then maps that same file.
        if self.cache_dir:
            for manifest in (self.train_manifest, self.val_manifest):
                self._regions(manifest)

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            train_cut, val_cut = self._regions(self.train_manifest), self._regions(self.val_manifest)
            train_arrays, train_failed = train_cut.arrays, train_cut.failed
            val_arrays, val_failed = val_cut.arrays, val_cut.failed
            self.face_summary = {
                "train": summarize_regions(train_cut.stats, self.train_manifest.labels),
                "val": summarize_regions(val_cut.stats, self.val_manifest.labels),
            }
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

    def _loader(self, dataset: Dataset, **kwargs) -> DataLoader:
        return DataLoader(
            dataset,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            pin_memory=torch.cuda.is_available(),
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        assert self._train is not None
        generator = torch.Generator().manual_seed(self.seed)
        sampler: Sampler[int]
        if self.balance == "sampler":
            labels = self._train.labels
            counts = np.bincount(labels, minlength=2).astype(np.float64)
            weights = (1.0 / np.maximum(counts, 1))[labels]
            sampler = WeightedRandomSampler(
                torch.as_tensor(weights), num_samples=len(labels), replacement=True
            )
        else:
            sampler = RandomSampler(self._train, generator=generator)
        batches = MergeSingleBatchSampler(sampler, self.batch_size)
        return self._loader(self._train, batch_sampler=batches, generator=generator)

    def batches_per_epoch(self, world_size: int = 1) -> tuple[int, int]:
        """(train, val) batches each of `world_size` processes runs in a full epoch (a
        DistributedSampler gives each ceil(n / world_size) samples)."""
        self.setup()
        assert self._train is not None and self._val is not None
        per_rank = [math.ceil(len(d) / max(1, world_size)) for d in (self._train, self._val)]
        return (
            batch_count(per_rank[0], self.batch_size, merge_single=True),
            batch_count(per_rank[1], self.batch_size),
        )

    def val_dataloader(self) -> DataLoader:
        assert self._val is not None
        # A fixed, seeded order: with val_fraction < 1 Lightning runs only the first batches, and
        # the manifest lists one class after the other, so they must be a random mix of both
        # (the notebook's validation generator shuffles too).
        order = np.random.default_rng(self.seed).permutation(len(self._val)).tolist()
        return self._loader(Subset(self._val, order), batch_size=self.batch_size, shuffle=False)
