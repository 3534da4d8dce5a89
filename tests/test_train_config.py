"""Training settings are checked before anything runs or is written: every --set override against the
preset field's type, sizes and thread counts against bounds, and the data for both classes in the
train and validation splits (calibration fits on validation), each refused in one line naming the key.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from badfiles import write_good_images
from inference_helpers import make_bundle
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.manifest import DatasetError, check_both_classes, discover
from deepfake_detector.inference.engines import max_threads
from deepfake_detector.training.config import ConfigError, load_config

# (overrides, the error's words): each a one-line ConfigError naming the key and the type or bound.
BAD_OVERRIDES: list[tuple[dict[str, Any], str]] = [
    ({"early_stopping.patience": "abc"}, "--set: early_stopping.patience must be an integer, got 'abc'"),
    ({"img_size": "32.5"}, "--set: img_size must be an integer, got 32.5"),
    ({"epochs": "abc"}, "--set: epochs must be an integer, got 'abc'"),
    ({"augment": "5"}, "--set: augment is a section, not a value (set a field: augment.<field>=...), got 5"),
    ({"augment.hflip": "maybe"}, "--set: augment.hflip must be true or false, got 'maybe'"),
    ({"lr": "fast"}, "--set: lr must be a number, got 'fast'"),
    ({"lr": ".inf"}, "--set: lr must be a number, got inf"),
    ({"workers": "two"}, "--set: workers must be an integer or null, got 'two'"),
    ({"epochs": "[1"}, "--set: epochs must be an integer, got '[1'"),  # not YAML: kept as text
    ({"crop": "tight"}, "--set: crop must be a mapping or null, got 'tight'"),
    ({"img_size": 100_000}, "img_size must be 16 to 1024 pixels, got 100000"),
    ({"img_size": 8}, "img_size must be 16 to 1024 pixels, got 8"),
    ({"threads": 100_000}, f"threads must be 1 to {max_threads()} (4 per core), got 100000"),
    ({"workers": 100_000}, f"workers must be 0 to {max_threads()} (4 per core), got 100000"),
    ({"early_stopping.patience": -1}, "early_stopping.patience must be >= 0, got -1"),
    ({"nonsense": "1"}, "unknown field(s) ['nonsense']"),
]


@pytest.mark.parametrize(("overrides", "words"), BAD_OVERRIDES, ids=[str(o) for o, _ in BAD_OVERRIDES])
def test_a_bad_override_is_one_clear_line(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("seed", overrides)
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_overrides_are_read_as_the_fields_type() -> None:
    cfg = load_config(
        "seed", {"lr": "1e-3", "name": "123", "devices": "2", "workers": "null", "augment.rotate": "5"}
    )
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float)  # YAML reads 1e-3 as text
    assert cfg.name == "123" and cfg.devices == 2 and cfg.workers is None
    assert cfg.augment.rotate == 5.0 and isinstance(cfg.augment.rotate, float)


# --- the data: both classes in train and in val ------------------------------------------------------


def dataset(root: Path, val_fake: int = 4) -> Path:
    for split, n_fake in (("Train", 4), ("Validation", val_fake)):
        write_good_images(root / split / "Real", 4, prefix="real")
        if n_fake:
            write_good_images(root / split / "Fake", n_fake, prefix="fake", seed=20)
    return root


def test_a_validation_split_with_one_class_is_found_from_the_listing(tmp_path: Path) -> None:
    check_both_classes(discover(dataset(tmp_path / "ok")))
    with pytest.raises(DatasetError) as info:
        check_both_classes(discover(dataset(tmp_path / "bad", val_fake=0)))
    assert str(info.value) == (
        f"{tmp_path / 'bad'}: the val split has 4 real and 0 fake images; both classes are needed "
        "(to calibrate the scores and choose the threshold)"
    )


def test_resume_checks_the_classes_again(tmp_path: Path) -> None:
    from deepfake_detector.training.fit import CONFIG_FILE, DATA_FILE, _prepare_run

    data = dataset(tmp_path / "data", val_fake=0)
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text(load_config("seed").to_yaml())
    manifest = discover(data)
    (run / DATA_FILE).write_text(json.dumps({"root": str(data), "manifest_hash": manifest.digest()}))
    with pytest.raises(DatasetError, match="the val split has 4 real and 0 fake images"):
        _prepare_run(None, "seed", run, {}, resume=True)


def test_train_refuses_before_writing_anything(tmp_path: Path) -> None:
    """A bad override, an absurd size, a one-class validation split: refused, and no run folder."""
    from deepfake_detector.training import train

    good, one_class = dataset(tmp_path / "good"), dataset(tmp_path / "one-class", val_fake=0)
    for i, (data, overrides, error, words) in enumerate([
        (good, {"early_stopping.patience": "abc"}, ConfigError, "early_stopping.patience must be an integer"),
        (good, {"img_size": 100_000}, ConfigError, "img_size must be 16 to 1024 pixels, got 100000"),
        (one_class, {}, DatasetError, "the val split has 4 real and 0 fake images; both classes are needed"),
    ]):  # fmt: skip
        run = tmp_path / f"run-{i}"
        with pytest.raises(error, match=re.escape(words)):
            train(str(data), preset="seed", out=run, overrides=overrides, progress=False)
        assert not run.exists()  # nothing written: no config.yaml to --resume from


def test_the_train_command_says_it_in_one_line(tmp_path: Path) -> None:
    data, run = dataset(tmp_path / "data"), tmp_path / "run"
    command = [sys.executable, "-m", "deepfake_detector", "train", str(data), "--preset", "seed", "--out", str(run),
               "--set", "early_stopping.patience=abc", "--quiet"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "error: --set: early_stopping.patience must be an integer, got 'abc'"
    ]
    assert not run.exists()


# --- threads ---------------------------------------------------------------------------------------


def test_an_absurd_thread_count_is_refused_not_a_crash(tmp_path: Path) -> None:
    from deepfake_detector.inference.detector import Detector
    from deepfake_detector.service.limits import ServiceLimits

    model = make_bundle(tmp_path / "model")
    with pytest.raises(
        ValueError, match=rf"--threads must be 1 to {max_threads()} \(4 per core here\), got 100000"
    ):
        Detector.load(model, engine="torch", threads=100_000)
    with pytest.raises(ValueError, match="threads=100000"):
        ServiceLimits(threads=100_000)
    images = write_good_images(tmp_path / "in", 1)
    result = CliRunner().invoke(
        app, ["predict", str(images[0]), "--model", str(model), "--threads", "100000"]
    )
    assert result.exit_code == 2 and "--threads must be 1 to" in result.output, result.output
