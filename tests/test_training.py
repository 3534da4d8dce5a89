"""Training end to end on a tiny synthetic dataset: run-directory files, presets, kill -9 and resume."""

from __future__ import annotations

import csv
import json
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


def checkpoint_epoch(run: Path) -> int | None:
    """The last epoch checkpoints/last.ckpt holds (it must always load: it is written atomically)."""
    last = run / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    return int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])


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
    deadline = time.monotonic() + 300
    # Kill -9 as soon as epoch 0 is checkpointed: three of the four epochs are still to run.
    while not (run / "checkpoints" / "last.ckpt").exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 300 s")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint_epoch(run) is not None and not (run / "model.json").exists()

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
    assert_calibrated_on_validation(run, data)


def reference_logits(run: Path, paths: list[Path]) -> np.ndarray:
    """The saved network's raw logits for image files, computed here step by step."""
    from deepfake_detector.data.images import load_image
    from deepfake_detector.models import load_bundle

    model, spec = load_bundle(run)
    pixels = np.stack([load_image(p, size=spec.img_size) for p in paths]).astype(np.float32) / 255.0
    x = (pixels - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).reshape(-1).double().numpy()


def assert_calibrated_on_validation(run: Path, data: Path) -> None:
    """The temperature minimises the validation log loss and the threshold maximises validation
    balanced accuracy, both checked on validation logits computed here (not by the fitting code)."""
    from deepfake_detector.evaluation.calibration import TEMPERATURE_BOUNDS

    spec = json.loads((run / "model.json").read_text())
    reals = sorted((data / "Validation" / "Real").glob("*.png"))
    fakes = sorted((data / "Validation" / "Fake").glob("*.png"))
    logits = reference_logits(run, reals + fakes)
    labels = np.array([0] * len(reals) + [1] * len(fakes))

    def log_loss(t: float) -> float:
        z = logits / t
        return float(np.mean(labels * np.logaddexp(0, -z) + (1 - labels) * np.logaddexp(0, z)))

    t = spec["temperature"]
    low, high = TEMPERATURE_BOUNDS
    if t > low * 1.01:  # an optimum at a bound (separable logits) is checked from the inside only
        assert log_loss(t) <= log_loss(t * 0.98) + 1e-9, t
    if t < high / 1.01:
        assert log_loss(t) <= log_loss(t * 1.02) + 1e-9, t

    probs = 1 / (1 + np.exp(-logits / t))

    def balanced_accuracy(threshold: float) -> float:
        return float((np.mean(probs[labels == 1] >= threshold) + np.mean(probs[labels == 0] < threshold)) / 2)

    best = max(balanced_accuracy(c) for c in [*probs, np.inf])
    # Just below: the threshold is one of the scores, which may differ here in the last float bits.
    assert balanced_accuracy(spec["threshold"] - 1e-6) == pytest.approx(best), spec["threshold"]
    assert spec["metrics"]["val"]["balanced_accuracy"] == pytest.approx(best)


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


# --- small datasets, batch edges, the Detector facade ----------------------------------------------


def write_split_images(root: Path, per_class: int, size: int, splits=("Train", "Validation")) -> Path:
    """`per_class` synthetic images per split and class (fake ones carry a bright square)."""
    rng = np.random.default_rng(1)
    for split in splits:
        for cls in ("Real", "Fake"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(60, 120, (size, size, 3), dtype=np.uint8)
                if cls == "Fake":
                    img[size // 5 : size // 2, size // 5 : size // 2] = 230
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def test_batches_to_run_floors_the_fraction_but_never_reaches_zero():
    from deepfake_detector.training.callbacks import batches_to_run

    assert batches_to_run(1, 0.5) == 1  # the seed preset on one batch: Lightning's float limit gives 0
    assert batches_to_run(7, 0.5) == 3  # the notebook's steps_per_epoch = len(generator) // 2
    assert batches_to_run(10, 0.5) == 5 and batches_to_run(3, 0.01) == 1
    assert batches_to_run(4, 1.0) == 1.0  # the whole epoch, however long


def test_merge_single_batch_sampler_never_yields_a_batch_of_one():
    from deepfake_detector.training.datamodule import MergeSingleBatchSampler, batch_count

    for n, size, expected in [(17, 8, [8, 9]), (16, 8, [8, 8]), (9, 8, [9]), (1, 8, [1]), (10, 4, [4, 4, 2])]:
        batches = list(MergeSingleBatchSampler(range(n), size))
        assert [len(b) for b in batches] == expected, (n, size)
        assert sorted(i for b in batches for i in b) == list(range(n)), "every sample once"
        assert len(MergeSingleBatchSampler(range(n), size)) == len(expected) == batch_count(n, size, True)
    assert [len(b) for b in MergeSingleBatchSampler(range(3), 1)] == [1, 1, 1]  # batch size 1 stays
    assert batch_count(17, 8) == 3


def test_seed_preset_on_a_small_dataset_runs_one_batch_per_epoch(tmp_path):
    """40 images per class and split at seed's own 128 px and batch 256: one batch, of which seed's
    train/val_fraction 0.5 used to round to zero batches (Lightning refused to start)."""
    from typer.testing import CliRunner

    from deepfake_detector.cli import app

    data = write_split_images(tmp_path / "data", 40, 128, splits=("Train", "Validation", "Test"))
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(data), "--preset", "seed", "--epochs", "1", "--out", str(run), "--quiet"]
    )
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    assert epochs_in(run) == [0]
    spec = json.loads((run / "model.json").read_text())
    assert (spec["preset"], spec["img_size"], spec["trained_on"]) == ("seed", 128, ["data"])
    assert (run / "model.safetensors").is_file()


def test_a_last_training_batch_of_one_sample_is_merged_not_fed_to_batchnorm(tmp_path):
    """9 training images at batch 8 leave one sample over; MobileNetV2 at 32 px ends in a 1x1 BatchNorm,
    which refuses a training batch of one ("Expected more than 1 value per channel")."""
    from deepfake_detector.training import train

    data = write_split_images(tmp_path / "data", 5, 32)
    (data / "Train" / "Fake" / "4.png").unlink()  # 5 real + 4 fake = 9 = 8 + 1
    overrides = {"model": "mobilenetv2", "pretrained": False, "img_size": 32, "batch_size": 8, "epochs": 1,
                 "train_fraction": 1.0, "val_fraction": 1.0}  # fmt: skip
    result = train(str(data), preset="seed", out=tmp_path / "run", overrides=overrides, progress=False)
    assert result.epochs_completed == 1 and (tmp_path / "run" / "model.json").is_file()
    row = read_metrics_rows(tmp_path / "run")[0]
    assert row["train_loss"] and row["val_loss"]


def read_metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_detector_train_returns_the_trained_model_and_resumes_with_data_none(tmp_path):
    from deepfake_detector.inference import Detector

    data = make_dataset(tmp_path / "data", per_class=8)
    run = tmp_path / "run"
    overrides = {"img_size": SIZE, "batch_size": 8, "epochs": 1, "train_fraction": 1.0, "val_fraction": 1.0}
    detector = Detector.train(data, preset="seed", out=run, overrides=overrides, progress=False)
    assert isinstance(detector, Detector) and detector.folder == run
    assert detector.spec.trained_on == ["data"] and detector.spec.name == "seed-data"
    assert detector.spec.preset == "seed" and detector.spec.img_size == SIZE
    saved = json.loads((run / "model.json").read_text())
    assert detector.spec.weights_sha256 == saved["weights_sha256"]
    assert detector.spec.threshold == saved["threshold"] and detector.spec.temperature == saved["temperature"]

    # data=None continues the recorded run on its recorded dataset (it was passed on as the string "None").
    resumed = Detector.train(None, out=run, resume=True, overrides={"epochs": 2}, progress=False)
    assert isinstance(resumed, Detector) and epochs_in(run) == [0, 1]
    assert resumed.spec.trained_on == ["data"]
    assert resumed.spec.weights_sha256 == json.loads((run / "model.json").read_text())["weights_sha256"]


def test_detector_train_on_a_non_zero_ddp_rank_returns_none_without_loading(tmp_path, monkeypatch):
    """Only global rank 0 saves a model; the other ranks must not try to load one that is not there."""
    from deepfake_detector.inference import Detector
    from deepfake_detector.spec import ModelSpec
    from deepfake_detector.training.fit import RunResult

    calls: list[tuple] = []

    def fake_train(data, **options):
        calls.append((data, options))
        return RunResult(tmp_path / "run", ModelSpec("seed-cnn", SIZE), 1, global_rank=int(data == "d1"))

    def no_load(*args, **kwargs):
        raise AssertionError("Detector.load called on a rank without a model")

    monkeypatch.setattr("deepfake_detector.training.train", fake_train, raising=False)
    monkeypatch.setattr(Detector, "load", classmethod(no_load))
    assert Detector.train("d1", preset="seed", out=tmp_path / "run") is None
    assert calls == [("d1", {"preset": "seed", "out": tmp_path / "run"})]
    with pytest.raises(AssertionError, match="Detector.load called"):
        Detector.train("d0", out=tmp_path / "run")  # rank 0 does load the saved model
