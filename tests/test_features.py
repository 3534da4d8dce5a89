"""Frozen-feature training: the on-disk feature cache and the logistic / MLP heads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import shared_images

from deepfake_detector.data.images import load_image
from deepfake_detector.features.cache import DEFAULT_CROP_KEY, encode_cached
from deepfake_detector.features.fit import LabelledFeatures, fit_logistic, fit_mlp, group_weights
from deepfake_detector.features.heads import HEAD_META, HEAD_WEIGHTS, FeatureHead, InvalidHead
from deepfake_detector.models.clip.encoder import ClipEncoder


def clouds(n: int, dim: int = 32, seed: int = 0, shift: float = 1.5) -> LabelledFeatures:
    """Two Gaussian clouds whose means differ by `shift` along every axis (plus one useless axis)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    scales = np.random.default_rng(123).uniform(0.5, 3.0, size=dim)  # the same in every split
    x = rng.normal(size=(n, dim)) * scales + 10.0  # unstandardised, as raw CLIP features are
    x[:, :-1] += shift * y[:, None] * scales[:-1] / np.sqrt(dim)
    return LabelledFeatures(x, y)


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_heads_separate_two_clouds_and_round_trip(kind: str, tmp_path: Path) -> None:
    train, val, test = (
        clouds(600, seed=0, shift=4),
        clouds(200, seed=1, shift=4),
        clouds(400, seed=2, shift=4),
    )
    fit = fit_logistic if kind == "logistic" else fit_mlp
    kwargs = {"max_epochs": 60, "patience": 8} if kind == "mlp" else {}
    head = fit(train, val, "cls12", "enc-test", **kwargs)
    assert head.kind == kind and head.dim == 32 and head.info["n_train"] == 600
    logits = head.logits(test.x)
    assert logits.shape == (400,) and logits.dtype == np.float32
    assert auc(test.y, logits) > 0.97 and auc(test.y, -logits) < 0.03  # right direction: fake = high
    head.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([HEAD_META, HEAD_WEIGHTS])
    loaded = FeatureHead.load(tmp_path)
    np.testing.assert_array_equal(loaded.logits(test.x), logits)
    assert (loaded.feature_set, loaded.encoder_id) == ("cls12", "enc-test")
    with pytest.raises(ValueError, match=r"expects \(n, 32\) features"):
        loaded.logits(test.x[:, :10])


def test_logistic_regression_picks_c_on_validation() -> None:
    head = fit_logistic(clouds(300, seed=3), clouds(300, seed=4), "embed", "e", cs=(1e-4, 1.0))
    assert set(head.info["auc_by_C"]) == {"0.0001", "1.0"}
    best = max(head.info["auc_by_C"].values())
    assert head.info["val"]["auc"] == pytest.approx(best)


def test_group_weights_balance_every_source_and_class() -> None:
    labels = np.array([0] * 90 + [1] * 10 + [0] * 5 + [1] * 15)
    sources = np.array(["dfdc"] * 100 + ["stylegan"] * 20)
    w = group_weights(labels, sources)
    totals = [w[(sources == s) & (labels == c)].sum() for s in ("dfdc", "stylegan") for c in (0, 1)]
    np.testing.assert_allclose(totals, [30.0] * 4)  # 120 rows over 4 groups
    per_class = group_weights(labels)
    assert per_class[labels == 0].sum() == pytest.approx(per_class[labels == 1].sum())


def test_validation_averages_sources_so_a_small_one_counts() -> None:
    # Source b is small and its fakes lie the other way: pooled weighting would ignore it.
    a, b = clouds(400, seed=5, shift=3), clouds(40, seed=6, shift=-3)
    train = LabelledFeatures(
        np.vstack([a.x, b.x]), np.concatenate([a.y, b.y]), np.array(["a"] * 400 + ["b"] * 40)
    )
    head = fit_logistic(train, train, "cls12", "e")
    assert set(head.info["val"]) >= {"auc", "auc_a", "auc_b"}
    assert head.info["val"]["auc"] == pytest.approx(
        (head.info["val"]["auc_a"] + head.info["val"]["auc_b"]) / 2
    )
    assert head.info["train_counts"]["b"] == {"real": 20, "fake": 20}


def test_damaged_head_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    head = fit_logistic(clouds(100), clouds(100, seed=1), "cls12", "e", cs=(1.0,))
    head.save(tmp_path)
    meta = json.loads((tmp_path / HEAD_META).read_text())
    (tmp_path / HEAD_META).write_text(json.dumps({**meta, "dim": 31}))
    with pytest.raises(InvalidHead, match=rf"{HEAD_WEIGHTS}: tensor shapes"):
        FeatureHead.load(tmp_path)
    (tmp_path / HEAD_META).write_text(json.dumps({**meta, "kind": "forest"}))
    with pytest.raises(InvalidHead, match=rf"{HEAD_META}: unknown head kind 'forest'"):
        FeatureHead.load(tmp_path)
    (tmp_path / HEAD_META).write_text(json.dumps(meta))
    (tmp_path / HEAD_WEIGHTS).write_bytes(b"\x80\x04pickle?")
    with pytest.raises(InvalidHead, match=rf"{HEAD_WEIGHTS}: not a readable safetensors file"):
        FeatureHead.load(tmp_path)


@pytest.fixture(scope="module")
def encoder() -> ClipEncoder:
    return ClipEncoder("cls12+embed", threads=2)


@pytest.fixture()
def files(tmp_path: Path) -> list[str]:
    real = shared_images("dfdc", "Test", "Real", 2) + shared_images("dfdc", "Test", "Fake", 2)
    if len(real) < 4:
        pytest.fail("../shared/data/dfdc/Test is needed by these tests", pytrace=False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return [str(real[0]), str(real[1]), str(broken), str(real[2]), str(real[3])]


def test_cache_encodes_once_and_reports_unreadable_files(
    encoder: ClipEncoder, files: list[str], tmp_path: Path
) -> None:
    done: list[int] = []
    before = encoder.calls
    first = encode_cached(files, encoder, tmp_path / "cache", chunk_size=2, progress=done.append)
    assert encoder.calls - before == 4 and first.encoded == 4 and sum(done) == 5
    assert first.ok.tolist() == [True, True, False, True, True]
    assert list(first.errors) == [files[2]] and first.errors[files[2]]
    assert np.isnan(first.features[2]).all() and np.isfinite(first.features[first.ok]).all()
    np.testing.assert_array_equal(first.features[3], encoder.encode([load_image(files[3], size=224)])[0])
    assert not list(first.folder.glob("*.pkl")) and len(list(first.folder.glob("chunk-*.npy"))) == 3

    calls = encoder.calls
    again = encode_cached(files, encoder, tmp_path / "cache", chunk_size=2)
    assert encoder.calls == calls and again.encoded == 0 and again.key == first.key
    np.testing.assert_array_equal(again.features, first.features)
    assert again.errors == first.errors

    other = encode_cached(files, encoder, tmp_path / "cache", chunk_size=2, data_key="manifest:abc")
    assert other.key != first.key and other.encoded == 4  # another key is another entry


def test_interrupted_cache_resumes_with_the_missing_chunks(
    encoder: ClipEncoder, files: list[str], tmp_path: Path
) -> None:
    seen: list[str] = []

    def crop(path: str) -> np.ndarray:
        if path == files[4] and not seen:
            seen.append(path)
            raise KeyboardInterrupt  # the run is killed while preparing the last chunk
        return load_image(path, size=224)

    with pytest.raises(KeyboardInterrupt):
        encode_cached(files, encoder, tmp_path / "c", crop_fn=crop, crop_key="test-crop", chunk_size=2)
    calls = encoder.calls
    resumed = encode_cached(files, encoder, tmp_path / "c", crop_fn=crop, crop_key="test-crop", chunk_size=2)
    assert encoder.calls - calls == 1 and resumed.encoded == 1  # only the unfinished chunk
    plain = encode_cached(files, encoder, tmp_path / "c", chunk_size=2)
    assert plain.key != resumed.key and plain.encoded == 4  # a different crop spec is not reused
    np.testing.assert_array_equal(plain.features[plain.ok], resumed.features[resumed.ok])
    with pytest.raises(ValueError, match="crop_key"):
        encode_cached(files, encoder, tmp_path / "c", crop_fn=crop)
    assert DEFAULT_CROP_KEY in json.loads((plain.folder / "meta.json").read_text())["crop_key"]
