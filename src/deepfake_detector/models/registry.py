"""Model registry: one file per family, each constructor registered by a decorator (as in timm)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from deepfake_detector.spec import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., nn.Module]
    default_img_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    img_size: int,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register `build(pretrained=False, weights=None, img_size=None) -> nn.Module`.

    Every registered network maps a normalised (N, 3, H, W) batch to (N, 1) logits of "fake".
    """

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, build, img_size, mean, std, description or (build.__doc__ or ""))
        return build

    return decorator


def list_models(pattern: str | None = None, include_timm: bool = True) -> list[str]:
    """Registered model names matching a shell-style pattern (all when None), then, as timm's
    `list_models` does, every timm architecture that matches it, spelled `timm:<name>`."""
    import fnmatch

    _import_families()
    names = sorted(n for n in _REGISTRY if pattern is None or fnmatch.fnmatch(n, pattern))
    if include_timm and pattern is not None:
        import timm

        bare = pattern.removeprefix("timm:")
        names += [f"timm:{n}" for n in timm.list_models(bare)]
    return names


def model_info(name: str) -> ModelInfo:
    _import_families()
    if name.startswith("timm:"):
        from deepfake_detector.models.timm_models import timm_info

        return timm_info(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}, timm:<name>"
        ) from None


def create_model(
    name: str, pretrained: bool = False, weights: str | None = None, img_size: int | None = None
) -> nn.Module:
    """Build a registered model (or `timm:<name>`).

    `pretrained` loads the family's ImageNet weights (offline from a package where one ships them);
    `weights` is a local file of pretrained backbone weights instead; `img_size` matters only to
    networks with a fixed-size head (seed-cnn).
    """
    info = model_info(name)
    return info.build(pretrained=pretrained, weights=weights, img_size=img_size or info.default_img_size)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _import_families() -> None:
    # Importing a family module runs its @register_model decorators.
    from deepfake_detector.models import (  # noqa: F401
        efficientnet_lite,
        mesonet,
        mobilenet,
        seed_cnn,
    )
    from deepfake_detector.models.clip import torch_vit  # noqa: F401
