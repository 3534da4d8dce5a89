"""Model zoo and model bundles: architectures, offline ImageNet weights, safe loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib
import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from deepfake_detector.data.images import load_image
from deepfake_detector.locate import ModelNotFound
from deepfake_detector.models import (
    InvalidModelFile,
    UntrustedWeights,
    count_parameters,
    create_model,
    list_models,
    load_bundle,
    load_state_dict_file,
    model_info,
    save_bundle,
)
from deepfake_detector.models.efficientnet_lite import IMAGENET_WEIGHTS as LITE0_WEIGHTS
from deepfake_detector.models.efficientnet_lite import TIMM_ARCH, to_timm_keys
from deepfake_detector.models.mobilenet import IMAGENET_WEIGHTS as MOBILENET_WEIGHTS
from deepfake_detector.models.weights import package_file
from deepfake_detector.spec import ModelSpec

torch.set_num_threads(1)


def _package_weights(parts: tuple[str, ...]) -> Path:
    try:
        return package_file(*parts)
    except FileNotFoundError as exc:
        pytest.skip(f"ImageNet weights package not installed: {exc}")


def _output_sides(model: nn.Module, img_size: int, layer_types: tuple[type, ...]) -> list[int]:
    sides: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
        for m in model.modules()
        if isinstance(m, layer_types)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, img_size, img_size))
    for h in hooks:
        h.remove()
    return sides


# --- architectures --------------------------------------------------------------------------


def test_seed_cnn_matches_the_notebook():
    model = create_model("seed-cnn").eval()
    assert count_parameters(model) == 1_568_321
    assert _output_sides(model, 128, (nn.Conv2d, nn.MaxPool2d)) == [126, 63, 61, 30, 28, 14, 12, 6]
    flat: list[torch.Size] = []
    flatten = next(m for m in model.modules() if isinstance(m, nn.Flatten))
    flatten.register_forward_hook(lambda _m, _i, out: flat.append(out.shape))
    with torch.no_grad():
        model(torch.zeros(2, 3, 128, 128))
    assert flat == [torch.Size([2, 9216])]


@pytest.mark.parametrize(("name", "params"), [("meso4", 27_977), ("mesoinception4", 28_615)])
def test_mesonet_matches_the_paper(name, params):
    # Parameter counts reported by Afchar et al. 2018; 256 -> 128 -> 64 -> 32 -> 8 after the pools.
    model = create_model(name).eval()
    assert model_info(name).default_img_size == 256
    assert count_parameters(model) == params
    assert _output_sides(model, 256, (nn.MaxPool2d,)) == [128, 64, 32, 8]


def _head_reference(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(model(x), the last Linear layer applied by hand to the features it received)."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    with torch.no_grad():
        logits = model(x)
    hook.remove()
    return logits, seen[0] @ head.weight.T + head.bias


def _with_batchnorm_stats(model: nn.Module, size: int) -> nn.Module:
    """In eval mode, with BatchNorm running statistics set from one batch (as after training): with
    their init values a fresh network can saturate and give every image the same logit."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(torch.rand(8, 3, size, size))
    return model.eval()


def _manual_seed_cnn(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The notebook's network written out with torch.nn.functional (inference: no dropout)."""
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    dense1, dense2 = [m for m in model.classifier if isinstance(m, nn.Linear)]
    for conv in convs:
        x = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias)), 2)
    x = F.relu(F.linear(x.flatten(1), dense1.weight, dense1.bias))
    return F.linear(x, dense2.weight, dense2.bias)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_outputs_one_logit_per_image_from_its_head(name):
    size = model_info(name).default_img_size
    torch.manual_seed(0)
    model = _with_batchnorm_stats(create_model(name, pretrained=False), size)
    x = torch.rand(3, 3, size, size)
    logits, by_hand = _head_reference(model, x)
    assert logits.shape == (3, 1) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, by_hand, atol=1e-5, rtol=1e-5)  # nothing after the one-logit head
    with torch.no_grad():  # in eval mode each image's logit is its own, whatever the batch
        singles = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(logits, singles, atol=1e-4, rtol=1e-4)
    assert len(set(logits.reshape(-1).tolist())) == 3, "different images, different logits"


def test_seed_cnn_forward_equals_the_layers_computed_by_hand():
    torch.manual_seed(0)
    for size in (128, 64):
        model = create_model("seed-cnn", img_size=size).eval()
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            torch.testing.assert_close(model(x), _manual_seed_cnn(model, x), atol=1e-5, rtol=1e-5)


def test_mesonet_head_follows_img_size():
    model = create_model("meso4", img_size=128).eval()
    # 128 -> 64 -> 32 -> 16 -> 4 after the pools of 2, 2, 2 and 4: 16 channels of 4 x 4 into Dense 16.
    assert [m.in_features for m in model.modules() if isinstance(m, nn.Linear)] == [16 * 4 * 4, 16]
    logits, by_hand = _head_reference(model, torch.rand(2, 3, 128, 128))
    assert logits.shape == (2, 1)
    torch.testing.assert_close(logits, by_hand, atol=1e-5, rtol=1e-5)


def test_unknown_model_names_are_explained():
    with pytest.raises(ValueError, match="unknown model 'nope'.*seed-cnn"):
        create_model("nope")
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet_nope'.*timm\.list_models"):
        create_model("timm:resnet_nope")


def test_models_without_packaged_weights_refuse_pretrained():
    with pytest.raises(ValueError, match="no .*pretrained weights"):
        create_model("meso4", pretrained=True)


# --- offline ImageNet weights ---------------------------------------------------------------


def test_mobilenetv2_loads_packaged_imagenet_weights():
    path = _package_weights(MOBILENET_WEIGHTS)
    state = load_state_dict_file(path, allow_packaged_pickle=True)
    model = create_model("mobilenetv2", pretrained=True)
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(model.features[18][1].running_var, state["features.18.1.running_var"])
    assert model.classifier[-1].weight.shape == (1, 1280)


def test_efficientnet_lite0_loads_every_backbone_tensor():
    path = _package_weights(LITE0_WEIGHTS)
    original = load_state_dict_file(path, allow_packaged_pickle=True)
    model = create_model("efficientnet-lite0", pretrained=True)
    assert torch.equal(model.conv_stem.weight, original["_conv_stem.weight"])
    assert torch.equal(model.blocks[6][0].conv_pwl.weight, original["_blocks.15._project_conv.weight"])
    loaded = model.state_dict()
    backbone = {k: v for k, v in to_timm_keys(original, model).items() if not k.startswith("classifier.")}
    assert len(backbone) == len(loaded) - 2  # all but the new 1-logit head's weight and bias
    assert all(torch.equal(loaded[k], v) for k, v in backbone.items())
    assert model.classifier.weight.shape == (1, 1280)


def test_efficientnet_lite0_imagenet_weights_are_real():
    # With its original 1000-class head the packaged network must recognise a sample photo.
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not hopper.is_file():
        pytest.skip(f"{hopper}: matplotlib sample photo not installed")
    path = _package_weights(LITE0_WEIGHTS)
    model = timm.create_model(TIMM_ARCH, num_classes=1000).eval()
    model.load_state_dict(to_timm_keys(load_state_dict_file(path, allow_packaged_pickle=True), model))
    x = torch.from_numpy(load_image(hopper, size=224)).permute(2, 0, 1).float() / 255.0
    info = model_info("efficientnet-lite0")
    x = (x - torch.tensor(info.mean)[:, None, None]) / torch.tensor(info.std)[:, None, None]
    with torch.no_grad():
        top = int(model(x[None]).argmax())
    assert timm.data.ImageNetInfo().index_to_description(top) == "military uniform"


# --- timm:<name> ----------------------------------------------------------------------------


def test_timm_model_builds_with_a_one_logit_head():
    info = model_info("timm:resnet18")
    assert (info.default_img_size, info.mean) == (224, (0.485, 0.456, 0.406))
    model = create_model("timm:resnet18", pretrained=False).eval()
    reference = timm.create_model("resnet18", num_classes=1).eval()
    reference.load_state_dict(model.state_dict())  # the same tensors fit timm's own 1-class resnet18
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(logits, reference(x), atol=0, rtol=0)
    assert logits.shape == (2, 1) and model.fc.out_features == 1


def test_timm_model_loads_local_safetensors_backbone(tmp_path):
    source = timm.create_model("resnet18", num_classes=1000)
    with torch.no_grad():
        source.conv1.weight.normal_()
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))

    model = create_model("timm:resnet18", weights=str(weights))
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_mean, source.layer4[1].bn2.running_mean)
    assert model.fc.weight.shape == (1, 512)  # the 1000-class head was dropped

    state = load_file(str(weights))
    del state["layer1.0.conv1.weight"]
    save_file(state, str(weights))
    with pytest.raises(ValueError, match=r"resnet18\.safetensors.*missing 1"):
        create_model("timm:resnet18", weights=str(weights))


def test_pickle_weights_are_refused_unless_trusted(tmp_path):
    state = timm.create_model("resnet18", num_classes=1000).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    with pytest.raises(UntrustedWeights, match=r"resnet18\.pth.*pickle"):
        create_model("timm:resnet18", weights=str(path))
    with pytest.raises(UntrustedWeights, match="pickle"):
        load_state_dict_file(path)
    trusted = load_state_dict_file(path, trust_pickle=True)
    assert torch.equal(trusted["conv1.weight"], state["conv1.weight"])


# --- bundles --------------------------------------------------------------------------------

BUNDLE_SIZE = 64


def _meso4_with_batchnorm_stats() -> nn.Module:
    model = create_model("meso4", img_size=BUNDLE_SIZE).train()
    with torch.no_grad():
        model(torch.rand(4, 3, BUNDLE_SIZE, BUNDLE_SIZE))  # move BatchNorm running stats off their init
    return model.eval()


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    save_bundle(
        _meso4_with_batchnorm_stats(), ModelSpec(architecture="meso4", img_size=BUNDLE_SIZE), tmp_path
    )
    return tmp_path


def _rewrite_weights(folder: Path, state: dict[str, torch.Tensor]) -> None:
    """Replace model.safetensors and record its new SHA-256, as a careless editor would."""
    save_file(state, str(folder / "model.safetensors"))
    spec = json.loads((folder / "model.json").read_text())
    spec["weights_sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(spec))


def test_bundle_round_trip_gives_identical_logits(tmp_path):
    original = _meso4_with_batchnorm_stats()
    spec_path = save_bundle(original, ModelSpec(architecture="meso4", img_size=BUNDLE_SIZE), tmp_path)
    recorded = json.loads(spec_path.read_text())["weights_sha256"]
    assert recorded == hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()

    for ref in (tmp_path, spec_path, tmp_path / "model.safetensors"):
        model, spec = load_bundle(ref)
        assert (spec.architecture, spec.img_size, spec.weights_sha256) == ("meso4", BUNDLE_SIZE, recorded)
        assert not model.training
        x = torch.rand(3, 3, BUNDLE_SIZE, BUNDLE_SIZE)
        with torch.no_grad():
            assert torch.equal(model(x), original(x))


def test_bundle_with_a_changed_byte_is_refused(bundle_dir):
    weights = bundle_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(InvalidModelFile, match="checksum"):
        load_bundle(bundle_dir)


def test_bundle_with_a_wrong_shape_tensor_names_it(bundle_dir):
    state = load_file(str(bundle_dir / "model.safetensors"))
    key = "classifier.2.weight"
    state[key] = torch.zeros(16, 7)
    _rewrite_weights(bundle_dir, state)
    with pytest.raises(InvalidModelFile, match=rf"{key}.*shape \(16, 7\)"):
        load_bundle(bundle_dir)


def test_bundle_with_nan_weights_is_refused(bundle_dir):
    state = load_file(str(bundle_dir / "model.safetensors"))
    state["features.0.0.weight"][0, 0, 0, 0] = float("nan")
    _rewrite_weights(bundle_dir, state)
    with pytest.raises(InvalidModelFile, match=r"features\.0\.0\.weight.*NaN"):
        load_bundle(bundle_dir)


def test_bundle_without_model_json_is_explained(bundle_dir):
    (bundle_dir / "model.json").unlink()
    with pytest.raises(ModelNotFound, match="no model.json"):
        load_bundle(bundle_dir)
    with pytest.raises(ModelNotFound, match="no model.json beside it"):
        load_bundle(bundle_dir / "model.safetensors")


def test_bundle_without_recorded_checksum_is_refused(bundle_dir):
    spec = json.loads((bundle_dir / "model.json").read_text())
    spec["weights_sha256"] = ""
    (bundle_dir / "model.json").write_text(json.dumps(spec))
    with pytest.raises(InvalidModelFile, match="no weights_sha256"):
        load_bundle(bundle_dir)


def test_list_models_matches_the_registry_and_timm_like_timm_does() -> None:
    from deepfake_detector.models import list_models

    assert {"seed-cnn", "mobilenetv2", "clip-vit-b16"} <= set(list_models())
    assert all(not name.startswith("timm:") for name in list_models())  # no pattern: the registry only
    found = list_models("*mobilenetv2*")
    assert "mobilenetv2" in found and "timm:mobilenetv2_100" in found
    assert list_models("timm:resnet18") == ["timm:resnet18"] and list_models("no-such-*") == []
