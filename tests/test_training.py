"""Training end to end on a tiny synthetic dataset: run-directory files, presets, kill -9 and resume."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_detector.models.weights import load_state_dict_file
from deepfake_detector.training.config import ConfigError, load_config

SIZE = 48


def make_dataset(root: Path, per_class: int = 48) -> Path:
    """Real = smooth noise, fake = the same with a bright square: learnable in an epoch or two."""
    rng = np.random.default_rng(0)
    for split, n in (("Train", per_class), ("Validation", per_class // 2)):
        for cls in ("Real", "Fake"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(60, 120, (SIZE, SIZE, 3), dtype=np.uint8)
                if cls == "Fake":
                    img[10:30, 10:30] = 230
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "deepfake_detector", "train", str(data), "--preset", "seed", "--out", str(out),
            "--img-size", str(SIZE), "--batch-size", "8", "--set", "train_fraction=1.0", "--set",
            "val_fraction=1.0", "--quiet", *extra]  # fmt: skip


def epochs_in(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as fh:
        return [int(r["epoch"]) for r in csv.DictReader(fh)]


def test_presets_load_and_overrides_apply():
    seed = load_config("seed")
    assert (seed.model, seed.img_size, seed.batch_size, seed.lr, seed.epochs) == (
        "seed-cnn",
        128,
        256,
        1e-4,
        10,
    )
    assert (seed.augment.rotate, seed.augment.shift, seed.augment.zoom, seed.train_fraction) == (
        30,
        0.2,
        0.2,
        0.5,
    )
    custom = load_config("default", {"epochs": "3", "augment.jpeg_p": "0.5", "img_size": 160})
    assert (custom.epochs, custom.augment.jpeg_p, custom.img_size) == (3, 0.5, 160)
    with pytest.raises(ConfigError, match="unknown field"):
        load_config("default", {"no_such_field": 1})
    with pytest.raises(ConfigError, match="no such preset"):
        load_config("nope")


def test_killed_run_resumes_to_the_same_epoch_count(tmp_path):
    data = make_dataset(tmp_path / "data")
    run = tmp_path / "run"
    proc = subprocess.Popen(
        train_cmd(data, run, "--epochs", "4"), stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    deadline = time.time() + 300
    # Kill -9 once epoch 0 is checkpointed, i.e. somewhere inside a later epoch.
    while time.time() < deadline and not (run / "checkpoints" / "last.ckpt").exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.json").exists(), "the run finished before it could be killed"

    resumed = subprocess.run(
        [sys.executable, "-m", "deepfake_detector", "train", "--resume", str(run), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert epochs_in(run) == [0, 1, 2, 3]
    for name in ("config.yaml", "data.json", "manifest.csv", "metrics.csv", "curves.png", "model.json"):
        assert (run / name).is_file(), name

    from deepfake_detector.models import load_bundle

    model, spec = load_bundle(run)
    assert spec.architecture == "seed-cnn" and spec.img_size == SIZE
    assert spec.data_hash and spec.metrics["val"]["roc_auc"] > 0.5
    assert 0.0 <= spec.threshold <= 1.0 and spec.temperature > 0


def test_existing_run_is_not_overwritten(tmp_path):
    data = make_dataset(tmp_path / "data", per_class=8)
    run = tmp_path / "run"
    first = subprocess.run(train_cmd(data, run, "--epochs", "1"), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    again = subprocess.run(train_cmd(data, run, "--epochs", "1"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_pickle_init_weights_need_trust_pickle_and_are_kept_as_safetensors(tmp_path):
    from deepfake_detector.models import create_model

    data = make_dataset(tmp_path / "data", per_class=8)
    pth = tmp_path / "init.pth"
    torch.save(create_model("seed-cnn", img_size=SIZE).state_dict(), pth)
    refused = subprocess.run(
        train_cmd(data, tmp_path / "refused", "--epochs", "1", "--weights", str(pth)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "init.pth" in refused.stderr and "--trust-pickle" in refused.stderr
    assert not (tmp_path / "refused" / "model.json").exists()

    run = tmp_path / "trusted"
    ok = subprocess.run(
        train_cmd(data, run, "--epochs", "1", "--weights", str(pth), "--trust-pickle"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    converted = load_state_dict_file(run / "init_weights.safetensors")  # safe to read: no pickle
    original = torch.load(pth, weights_only=True)
    assert converted.keys() == original.keys()
    assert all(torch.equal(converted[k], original[k]) for k in original)
    assert (run / "model.json").is_file()
