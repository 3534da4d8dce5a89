"""Write train_manifest.json.gz for a model trained before runs recorded their training files.

The training selection is rebuilt from the model's config.yaml (seed, limit_per_class) on the
given datasets, exactly as training/fit.py and training/heads.py select it, and written only when
its digest equals the model's recorded `data_hash`: the list is then the one the model saw.

    python scripts/backfill_train_manifest.py MODEL_DIR DATA [DATA ...]
    e.g. python scripts/backfill_train_manifest.py src/deepfake_detector/weights/fast ../shared/data/dfdc
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import yaml

from deepfake_detector.data.manifest import Manifest, discover
from deepfake_detector.data.train_manifest import write_train_manifest
from deepfake_detector.spec import ModelSpec


def network_selection(root: str, seed: int, limit: int | None) -> tuple[Manifest, str]:
    """training/fit.py _select: the train and val splits, sampled per (split, class)."""
    manifest = discover(root, seed=seed)
    manifest = Manifest(
        manifest.root, tuple(s for s in manifest if s.split in ("train", "val")), manifest.layout
    )
    manifest = manifest.sample(limit, seed=seed) if limit else manifest
    return manifest, manifest.digest()


def head_selection(roots: list[str], seed: int, limit: int | None) -> tuple[list[Manifest], str]:
    """training/heads.py: each source sampled, then the digests of every train split and every val split."""
    manifests = []
    for root in roots:
        manifest = discover(root, seed=seed)
        manifests.append(manifest.sample(limit, seed=seed) if limit else manifest)
    parts = [m.split(split).digest() for split in ("train", "val") for m in manifests]
    return manifests, hashlib.sha256("\n".join(parts).encode()).hexdigest()


def main(model_dir: Path, roots: list[str]) -> int:
    spec = ModelSpec.load(model_dir / "model.json")
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    seed, limit = int(config.get("seed", 0)), config.get("limit_per_class")
    if config.get("head"):
        manifests, digest = head_selection(roots, seed, limit)
    else:
        if len(roots) != 1:
            sys.exit(f"{model_dir}: a network model trains on one dataset, {len(roots)} given")
        manifest, digest = network_selection(roots[0], seed, limit)
        manifests = [manifest]
    if digest != spec.data_hash:
        sys.exit(f"{model_dir}: these datasets do not give the recorded data_hash {spec.data_hash[:16]}")
    names = [Path(os.path.abspath(root)).name for root in roots]
    path = write_train_manifest(model_dir, list(zip(names, manifests, strict=True)), seed=seed)
    total = sum(len([s for s in m if s.split in ("train", "val")]) for m in manifests)
    print(f"{path}: {total} training files of {', '.join(names)} (data_hash {digest[:16]} matches)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
