"""MesoNet (Afchar et al. 2018): Meso4 and MesoInception4, as in the authors' Keras code.

Both nets are compact (~28k parameters) and read mesoscopic texture at 256x256, inputs in [0, 1].
Keras `padding="same"` pooling equals torch `ceil_mode=True`; its Flatten fixes the head to the
input size, so the head is sized from `img_size` (8x8x16 features at 256).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from deepfake_detector.models.registry import register_model

# Keras BatchNormalization's epsilon (torch's default is 1e-5).
KERAS_BN_EPS = 1e-3
POOL_SIZES = (2, 2, 2, 4)


def _pool(size: int) -> nn.MaxPool2d:
    return nn.MaxPool2d(size, ceil_mode=True)


def _conv_block(c_in: int, c_out: int, kernel: int, pool: int) -> nn.Sequential:
    """Conv (same padding) + ReLU, BatchNorm, max-pool: the order of the Keras code."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(c_out, eps=KERAS_BN_EPS),
        _pool(pool),
    )


class InceptionLayer(nn.Module):
    """Four branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 dilated 2; 1x1 -> 3x3 dilated 3."""

    def __init__(self, c_in: int, a: int, b: int, c: int, d: int):
        super().__init__()

        def conv(ci: int, co: int, kernel: int = 1, dilation: int = 1) -> list[nn.Module]:
            return [
                nn.Conv2d(ci, co, kernel, padding=dilation * (kernel // 2), dilation=dilation),
                nn.ReLU(True),
            ]

        self.branch1 = nn.Sequential(*conv(c_in, a))
        self.branch2 = nn.Sequential(*conv(c_in, b), *conv(b, b, 3))
        self.branch3 = nn.Sequential(*conv(c_in, c), *conv(c, c, 3, dilation=2))
        self.branch4 = nn.Sequential(*conv(c_in, d), *conv(d, d, 3, dilation=3))
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def _inception_block(c_in: int, a: int, b: int, c: int, d: int, pool: int) -> nn.Sequential:
    layer = InceptionLayer(c_in, a, b, c, d)
    return nn.Sequential(layer, nn.BatchNorm2d(layer.out_channels, eps=KERAS_BN_EPS), _pool(pool))


def feature_side(img_size: int) -> int:
    """Side of the last feature map after the four ceil-mode pools (8 at 256)."""
    side = img_size
    for pool in POOL_SIZES:
        side = math.ceil(side / pool)
    return side


class MesoNet(nn.Module):
    """Four feature blocks, then Dropout 0.5, Dense 16, LeakyReLU 0.1, Dropout 0.5, Dense 1 (a logit)."""

    def __init__(self, features: nn.Sequential, img_size: int):
        super().__init__()
        self.features = features
        side = feature_side(img_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(16 * side * side, 16),
            nn.LeakyReLU(0.1),
            nn.Dropout(0.5),
            nn.Linear(16, 1),
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


def _meso4_features() -> nn.Sequential:
    return nn.Sequential(
        _conv_block(3, 8, 3, POOL_SIZES[0]),
        _conv_block(8, 8, 5, POOL_SIZES[1]),
        _conv_block(8, 16, 5, POOL_SIZES[2]),
        _conv_block(16, 16, 5, POOL_SIZES[3]),
    )


def _mesoinception4_features() -> nn.Sequential:
    return nn.Sequential(
        _inception_block(3, 1, 4, 4, 2, POOL_SIZES[0]),
        _inception_block(11, 2, 4, 4, 2, POOL_SIZES[1]),
        _conv_block(12, 16, 5, POOL_SIZES[2]),
        _conv_block(16, 16, 5, POOL_SIZES[3]),
    )


def _build(
    features: nn.Sequential, name: str, pretrained: bool, weights: str | None, img_size: int
) -> nn.Module:
    if pretrained and not weights:
        raise ValueError(f"{name} has no packaged pretrained weights; train it or pass --weights")
    model = MesoNet(features, img_size)
    if weights:
        from deepfake_detector.models.weights import load_state_dict_file

        model.load_state_dict(load_state_dict_file(weights))
    return model


@register_model("meso4", img_size=256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
def meso4(pretrained: bool = False, weights: str | None = None, img_size: int | None = None) -> nn.Module:
    """Meso4 (27,977 params): conv 8/8/16/16 (3x3, 5x5, 5x5, 5x5) with BN and max-pool, Dense 16."""
    return _build(_meso4_features(), "meso4", pretrained, weights, img_size or 256)


@register_model("mesoinception4", img_size=256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
def mesoinception4(
    pretrained: bool = False, weights: str | None = None, img_size: int | None = None
) -> nn.Module:
    """MesoInception4: two inception blocks (dilated 3x3 branches), two 5x5 conv blocks, Dense 16."""
    return _build(_mesoinception4_features(), "mesoinception4", pretrained, weights, img_size or 256)
