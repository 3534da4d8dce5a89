"""`train --devices 2 --strategy ddp` on CPU (gloo): sharded data, reduced metrics, rank-0 files, resume.

Lightning's "ddp" strategy re-executes the launching command once per extra rank, so the two-process
runs go through the CLI in a subprocess (`python -m deepfake_detector train ...`); run inside
pytest it would re-execute pytest. The one-process reference run goes through `train()` directly.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from deepfake_detector.data import discover, load_image
from deepfake_detector.models import create_model, load_bundle
from deepfake_detector.spec import preprocess_batch
from deepfake_detector.training import train

SIZE = 32
TRAIN_PER_CLASS, VAL_PER_CLASS = 48, 16
EFFECTIVE_BATCH = 16  # one process x 16 == two processes x 8
# Enough steps for both runs to reach the optimum: after 2-3 epochs the loss is still falling fast
# and sample order and dropout draws alone left one run 0.2 above the other; after 6 epochs
# single-process runs with three seeds ended at val loss 0.008-0.032.
EPOCHS = 6
# meso4 (batch norm, 32 px works with its four ceil-mode pools); no geometric augmentation.
OVERRIDES = {
    "model": "meso4",
    "img_size": SIZE,
    "lr": 3e-3,
    "train_fraction": 1.0,
    "val_fraction": 1.0,
    "augment.rotate": 0,
    "augment.shift": 0,
    "augment.shear": 0,
    "augment.zoom": 0,
    "augment.hflip": "false",
    "early_stopping.patience": 10,
}


def make_dataset(root: Path, seed: int = 0) -> Path:
    """Kaggle layout; fakes are brighter (a difference meso4 learns within a dozen steps), same noise."""
    rng = np.random.default_rng(seed)
    for split, n in (("Train", TRAIN_PER_CLASS), ("Validation", VAL_PER_CLASS), ("Test", 2)):
        for label, cls in enumerate(("Real", "Fake")):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                base = rng.uniform(130, 210, size=3) if label else rng.uniform(40, 120, size=3)
                img = base + rng.normal(0, 10, size=(SIZE, SIZE, 3))
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def cli_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    flags = [f"--set={key}={value}" for key, value in OVERRIDES.items()]
    command = [sys.executable, "-m", "deepfake_detector", "train", *args, "--preset", "seed", "-q", *flags]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # Own process group: on a timeout the rank Lightning started is killed too, not left waiting on gloo.
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=1500)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def read_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        assert header[0] == "epoch"
        return [dict(zip(header, row, strict=True)) for row in reader]


def full_validation(run: Path, data: Path) -> tuple[float, float]:
    """Val loss and AUC of last.ckpt's weights on the whole validation split, in this process."""
    _, spec = load_bundle(run)
    model = create_model("meso4", img_size=SIZE)
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    val = discover(data).split("val")
    x = preprocess_batch([load_image(p, size=SIZE) for p in val.paths], spec)
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(x)).reshape(-1)
    labels = torch.as_tensor(val.labels, dtype=torch.float32)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).item()
    return loss, float(roc_auc_score(val.labels, logits.numpy()))


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_and_resumes(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")

    single = train(
        str(data),
        preset="seed",
        out=tmp_path / "single",
        overrides={**OVERRIDES, "epochs": EPOCHS, "batch_size": EFFECTIVE_BATCH, "devices": 1},
        progress=False,
    )

    ddp = tmp_path / "ddp"
    cache = tmp_path / "cache"
    per_rank = ["--devices", "2", "--strategy", "ddp", "--batch-size", str(EFFECTIVE_BATCH // 2)]
    per_rank += ["--cache-dir", str(cache)]
    first = cli_train(str(data), "--out", str(ddp), "--epochs", "1", *per_rank, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in first.stderr and "distributed_backend=gloo" in first.stderr
    assert first.stdout.count("run: ") == 1, first.stdout  # rank 1 reports nothing of its own
    assert len(read_rows(ddp)) == 1
    resumed = cli_train("--resume", str(ddp), "--epochs", str(EPOCHS), *per_rank, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # A valid run directory, written once: every epoch once, a loadable calibrated model.
    rows = read_rows(ddp)
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))
    model, spec = load_bundle(ddp)
    assert spec.architecture == "meso4" and spec.img_size == SIZE and spec.metrics["val"]
    assert model(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 1)
    assert not list(ddp.rglob("*.tmp")), "a half-written file was left behind"
    # The shared decoded-image cache (built in prepare_data): train and val, no temp file left.
    assert len(list(cache.glob("*.npy"))) == 2 and not list(cache.glob("*.tmp*")), list(cache.iterdir())

    # Sharded: each rank stepped through half the training images per epoch.
    checkpoint = torch.load(ddp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    per_rank_images = 2 * TRAIN_PER_CLASS // 2
    assert checkpoint["global_step"] == EPOCHS * math.ceil(per_rank_images / (EFFECTIVE_BATCH // 2))

    # Reduced: the logged val metrics are those of the whole split, not of rank 0's half.
    loss, auc = full_validation(ddp, data)
    last = rows[-1]
    assert float(last["val_loss"]) == pytest.approx(loss, abs=1e-4)
    assert float(last["val_auc"]) == pytest.approx(auc, abs=1e-4)

    # Same data, seed and effective batch: one and two processes learn the same thing.
    single_rows = read_rows(single.run_dir)
    assert len(single_rows) == EPOCHS
    assert float(single_rows[-1]["val_loss"]) == pytest.approx(float(last["val_loss"]), abs=0.15)
    assert single.spec.metrics["val"]["roc_auc"] == pytest.approx(spec.metrics["val"]["roc_auc"], abs=0.1)
