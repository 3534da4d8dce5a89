"""The notebook's 4-conv Keras CNN, layer for layer (1,568,321 parameters at 128x128)."""

from __future__ import annotations

import torch
import torch.nn as nn

from deepfake_detector.models.registry import register_model


class SeedCNN(nn.Module):
    """Conv 32/64/128/256 3x3 valid + ReLU, max-pool 2 after each, Flatten, Dense 128, Dropout 0.5, Dense 1.

    Keras flattens NHWC; we flatten NCHW. The parameter count and every output shape are the same,
    only the (learned) order of the Dense input weights differs.
    """

    def __init__(self, img_size: int = 128):
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 32, 64, 128, 256]
        side = img_size
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            side = (side - 2) // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * side * side, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(128, 1),
        )
        self._init_like_keras()

    def _init_like_keras(self) -> None:
        # Keras defaults: glorot_uniform kernels, zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("seed-cnn", img_size=128, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
def seed_cnn(pretrained: bool = False, weights: str | None = None, img_size: int | None = None) -> nn.Module:
    """The Kaggle notebook's CNN (inputs rescaled to [0, 1], no mean/std)."""
    if pretrained and not weights:
        raise ValueError("seed-cnn has no pretrained weights; train it or pass --weights")
    model = SeedCNN(img_size or 128)
    if weights:
        from deepfake_detector.models.weights import load_state_dict_file

        model.load_state_dict(load_state_dict_file(weights))
    return model
