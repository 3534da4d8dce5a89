"""Self-blended pseudo-fakes and the training options that use them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_detector.spec import ModelSpec, preprocess_batch
from deepfake_detector.training.augment import build_train_augment
from deepfake_detector.training.config import AugmentConfig
from deepfake_detector.training.datamodule import ArrayDataset
from deepfake_detector.training.self_blend import face_mask, self_blend


def _face_like(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(8, 8, 3)).astype(np.float32)
    big = np.kron(low, np.ones((size // 8, size // 8, 1), np.float32))
    return np.clip(big + rng.normal(0, 8, big.shape), 0, 255).astype(np.uint8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([32, 64, 96]))
def test_mask_is_soft_centred_and_inside_unit_range(seed: int, size: int) -> None:
    mask = face_mask((size, size), np.random.default_rng(seed))
    assert mask.shape == (size, size) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0 + 1e-6
    assert mask[size // 2, size // 2] > 0.5  # the face centre is blended
    assert mask[0, 0] < 0.05 and mask[-1, -1] < 0.05  # the corners (background) are not


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_blend_changes_the_face_and_keeps_the_background(seed: int) -> None:
    image = _face_like()
    out = self_blend(image, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - image.astype(int)).mean(axis=2)
    assert diff[24:40, 24:40].mean() > diff[:4, :4].mean()
    assert diff[:3, :3].max() <= 12  # corners: at most a trace of the feathered edge


def test_dataset_replaces_fakes_with_blended_reals_and_keeps_labels() -> None:
    reals = np.stack([_face_like(seed=i) for i in range(4)])
    fakes = np.zeros((4, 64, 64, 3), np.uint8)  # black: any non-black fake came from a real
    arrays, labels = np.concatenate([reals, fakes]), np.array([0] * 4 + [1] * 4)
    spec = ModelSpec(architecture="seed-cnn", img_size=64)
    black = preprocess_batch(fakes[:1], spec)[0]
    never = ArrayDataset(arrays, labels, spec, self_blend_p=0.0)
    always = ArrayDataset(arrays, labels, spec, self_blend_p=1.0)
    for i in range(4, 8):
        x0, y0 = never[i]
        x1, y1 = always[i]
        assert float(y0) == float(y1) == 1.0
        assert np.allclose(x0.numpy(), black)
        assert not np.allclose(x1.numpy(), black)
    for i in range(4):  # reals are never touched
        assert np.allclose(always[i][0].numpy(), never[i][0].numpy())


def test_noise_augmentation_is_built_only_when_asked() -> None:
    names = [type(t).__name__ for t in build_train_augment(AugmentConfig(noise_p=0.5)).transforms]
    assert "GaussNoise" in names
    assert "GaussNoise" not in [type(t).__name__ for t in build_train_augment(AugmentConfig()).transforms]


def test_preprocess_table_path_equals_float_arithmetic() -> None:
    spec = ModelSpec(
        architecture="mobilenetv2", img_size=16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    batch = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    expected = ((batch / 255.0 - np.array(spec.mean)) / np.array(spec.std)).transpose(0, 3, 1, 2)
    got = preprocess_batch(batch, spec)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(preprocess_batch(batch.astype(np.float32), spec), got, atol=1e-6)
