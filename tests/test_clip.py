"""CLIP ViT-B/16 family: the packaged int8 encoder, its feature sets, the fp32 PyTorch rebuild and
the torch-free head engine. Offline; real dfdc images from ../shared/data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inference_helpers import shared_images

from deepfake_detector.data.images import load_image
from deepfake_detector.features.heads import FeatureHead
from deepfake_detector.inference.engines import ModelMismatch
from deepfake_detector.models.clip.encoder import CLIP_MEAN, CLIP_STD, ClipEncoder, to_clip_batch
from deepfake_detector.models.clip.engine import ClipHeadEngine
from deepfake_detector.models.clip.graph import FeatureSet, select_features
from deepfake_detector.models.clip.package import EncoderFileError, encoder_path, verify_encoder
from deepfake_detector.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

ALL = "cls4+cls8+cls12+embed"


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    paths = shared_images("dfdc", "Test", "Fake", 2) + shared_images("dfdc", "Test", "Real", 2)
    if len(paths) < 4:
        pytest.fail("../shared/data/dfdc/Test is needed by these tests", pytrace=False)
    return np.stack([load_image(p, size=224) for p in paths])


@pytest.fixture(scope="module")
def encoder() -> ClipEncoder:
    return ClipEncoder(ALL, threads=2)


@pytest.fixture(scope="module")
def features(encoder: ClipEncoder, crops: np.ndarray) -> np.ndarray:
    return encoder.encode(crops)


def test_feature_sets_parse_and_slice() -> None:
    fs = FeatureSet.parse("cls4+CLS12 + embed")
    assert fs.name == "cls4+cls12+embed" and fs.dim == 768 * 2 + 512
    assert fs.columns("embed") == slice(1536, 2048) and fs.needs_graph_edit
    assert not FeatureSet.parse("embed+cls12").needs_graph_edit
    for bad in ("cls13", "cls0", "pooled", "cls4+cls4"):
        with pytest.raises(ValueError, match="cls4|unknown"):
            FeatureSet.parse(bad)
    x = np.arange(2 * 2048, dtype=np.float32).reshape(2, 2048)
    np.testing.assert_array_equal(
        select_features(x, fs.name, "embed+cls4"), np.hstack([x[:, 1536:], x[:, :768]])
    )


def test_tampered_or_missing_encoder_file_is_refused(tmp_path: Path) -> None:
    assert verify_encoder() == encoder_path()
    copy = tmp_path / "clip_encoder.int8.onnx"
    shutil.copyfile(encoder_path(), copy)
    assert verify_encoder(copy) == copy  # an exact copy passes
    with open(copy, "r+b") as fh:  # flip one byte in the middle of the weights
        fh.seek(40_000_000)
        byte = fh.read(1)
        fh.seek(40_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EncoderFileError, match=rf"{copy}: SHA-256 .* refusing"):
        ClipEncoder("cls12", path=copy)
    with pytest.raises(EncoderFileError, match="missing.onnx: cannot read"):
        ClipEncoder("cls12", path=tmp_path / "missing.onnx")


def test_features_do_not_depend_on_batch_composition(
    encoder: ClipEncoder, crops: np.ndarray, features: np.ndarray
) -> None:
    assert features.shape == (4, encoder.dim) and np.isfinite(features).all()
    for i in range(len(crops)):
        np.testing.assert_array_equal(encoder.encode(crops[i : i + 1])[0], features[i])
    order = [3, 1, 0, 2]
    np.testing.assert_array_equal(encoder.encode(list(crops[order])), features[order])
    np.testing.assert_array_equal(encoder.encode(to_clip_batch(crops)), features)  # float32 NCHW input
    assert not np.allclose(features[0], features[1])  # different images, different features
    with pytest.raises(ValueError, match="float32 NCHW"):
        encoder.encode(crops.astype(np.int32))


def test_intermediate_outputs_leave_the_stock_outputs_unchanged(
    crops: np.ndarray, features: np.ndarray
) -> None:
    stock = ClipEncoder("embed+cls12", threads=2)  # the unedited graph
    np.testing.assert_array_equal(stock.encode(crops[:2]), select_features(features[:2], ALL, "embed+cls12"))
    cls4, cls12 = (select_features(features, ALL, c) for c in ("cls4", "cls12"))
    assert np.abs(cls4 - cls12).max() > 1.0  # blocks 4 and 12 really are different tensors


@pytest.fixture(scope="module")
def vit() -> Any:  # a timm VisionTransformer
    from deepfake_detector.models.clip.torch_vit import load_openai_clip

    return load_openai_clip("package")


def test_dequantised_weights_round_trip_exactly(vit: Any) -> None:
    import onnx

    from deepfake_detector.models.clip.graph import dequantize, quantized_linears

    layers = quantized_linears(onnx.load(str(encoder_path())))
    assert len(layers) == 12 * 6 + 1 and "vision_model.encoder.layers.11.mlp.fc2" in layers
    for name, layer in layers.items():
        w = dequantize(layer)
        requant = np.round(w / layer["scale"][None, :]) + layer["zero_point"][None, :]
        np.testing.assert_array_equal(requant.astype(np.int8), layer["q"], err_msg=name)
    state = vit.state_dict()
    q = layers["vision_model.encoder.layers.3.self_attn.q_proj"]
    np.testing.assert_array_equal(state["blocks.3.attn.qkv.weight"][:768].numpy(), dequantize(q).T)
    proj = dequantize(layers["visual_projection"]).T
    np.testing.assert_array_equal(state["head.weight"].numpy(), proj)


def test_torch_rebuild_matches_the_onnx_encoder(vit: Any, crops: np.ndarray, features: np.ndarray) -> None:
    import torch

    from deepfake_detector.models.clip.torch_vit import clip_features

    x = to_clip_batch(crops)
    with torch.inference_mode():
        ours = {k: v.numpy() for k, v in clip_features(vit, torch.from_numpy(x)).items()}
    # Exact: the same weights in fp32 ONNX (dequantised, float activations) give the same numbers.
    fp32 = ClipEncoder(ALL, threads=2, precision="fp32").encode(x[:2])
    ours_all = np.hstack([ours[c] for c in FeatureSet.parse(ALL).components])
    np.testing.assert_allclose(fp32, ours_all[:2], atol=2e-4, rtol=0)
    # Against the int8 graph the gap is its dynamic activation quantisation (measured on 20
    # dfdc + stylegan images: embed cosine mean 0.984, min 0.969; cls12 mean 0.968, min 0.937).
    for component, floor in (("cls4", 0.995), ("embed", 0.96), ("cls12", 0.94)):
        a, b = select_features(features, ALL, component), ours[component]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.mean() >= floor, (component, cos)


def test_layernorm_only_tuning_leaves_few_trainable_parameters(vit: Any) -> None:
    import copy

    from deepfake_detector.models.clip.torch_vit import freeze_except_layernorm

    model = copy.deepcopy(vit)
    n = freeze_except_layernorm(model, train_head=False)
    assert n == (2 + 2 * 12) * 2 * 768  # norm_pre, norm, 2 per block; weight + bias each
    assert not model.blocks[0].attn.qkv.weight.requires_grad and model.blocks[0].norm1.weight.requires_grad


def _head_folder(
    folder: Path, dim: int, encoder_id: str, mean: tuple = CLIP_MEAN, std: tuple = CLIP_STD
) -> ModelSpec:
    rng = np.random.default_rng(0)
    head = FeatureHead(
        "mlp",
        rng.normal(size=dim).astype(np.float32),
        rng.uniform(0.5, 2.0, size=dim).astype(np.float32),
        [
            (rng.normal(size=(dim, 8)).astype(np.float32), np.zeros(8, np.float32)),
            (rng.normal(size=(8, 1)).astype(np.float32), np.ones(1, np.float32)),
        ],
        "embed+cls12",
        encoder_id,
    )
    head.save(folder)
    spec = ModelSpec(architecture="clip-vit-b16", img_size=224, mean=mean, std=std)
    spec.save(folder / "model.json")
    return spec


SLIM_SCRIPT = """
import sys, json
import numpy as np
sys.modules["torch"] = None  # any `import torch` on this path now fails
from deepfake_detector.models.clip.engine import ClipHeadEngine
from deepfake_detector.spec import ModelSpec
folder = sys.argv[1]
engine = ClipHeadEngine.load(folder, ModelSpec.load(folder + "/model.json"), threads=2)
logits = engine.logits(np.load(folder + "/batch.npy"))
assert "torch" not in [m for m, mod in sys.modules.items() if mod is not None], "torch was imported"
print(json.dumps(logits.tolist()))
"""


def test_head_engine_scores_without_torch(tmp_path: Path, crops: np.ndarray) -> None:
    stock = ClipEncoder("embed+cls12", threads=2)
    _head_folder(tmp_path, stock.dim, stock.encoder_id)
    batch = to_clip_batch(crops[:2])
    np.save(tmp_path / "batch.npy", batch)
    done = subprocess.run(
        [sys.executable, "-c", SLIM_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    expected = FeatureHead.load(tmp_path).logits(stock.encode(batch))
    np.testing.assert_array_equal(np.array(json.loads(done.stdout), dtype=np.float32), expected)


def test_head_engine_refuses_other_preprocessing_or_encoder(tmp_path: Path) -> None:
    spec = _head_folder(tmp_path / "a", 512 + 768, "clip-vit-b16-int8-000000000000")
    with pytest.raises(ModelMismatch, match="head.json: head was fitted on encoder clip-vit-b16-int8-0000"):
        ClipHeadEngine.load(tmp_path / "a", spec)
    spec = _head_folder(tmp_path / "b", 512 + 768, "x", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with pytest.raises(ModelMismatch, match="model.json: a CLIP head needs img_size 224 and CLIP mean/std"):
        ClipHeadEngine.load(tmp_path / "b", spec)
