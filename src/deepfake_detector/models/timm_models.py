"""`timm:<name>`: any timm model with a one-logit head, pretrained from the hub or a local file."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import partial

import timm
import torch
import torch.nn as nn

from deepfake_detector.models.registry import ModelInfo
from deepfake_detector.models.weights import load_state_dict_file

PREFIX = "timm:"


def classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Module names of the model's classification head(s), from its timm pretrained_cfg."""
    head = model.pretrained_cfg.get("classifier") or "classifier"
    return (head,) if isinstance(head, str) else tuple(head)


def load_backbone(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load every non-classifier tensor of `state` into `model`, requiring all of them to fit.

    The head is dropped from `state` (it was trained for other classes) and keeps its fresh init.
    """
    heads = classifier_prefixes(model)

    def is_head(key: str) -> bool:
        return any(key == h or key.startswith(h + ".") for h in heads)

    backbone = {k: v for k, v in state.items() if not is_head(k)}
    expected = {k: v for k, v in model.state_dict().items() if not is_head(k)}
    missing = sorted(set(expected) - set(backbone))
    unexpected = sorted(set(backbone) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source}: weights do not match {type(model).__name__} "
            f"(missing {len(missing)} e.g. {missing[:3]}, unexpected {len(unexpected)} e.g. {unexpected[:3]})"
        )
    for key, ref in expected.items():
        if tuple(backbone[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{source}: {key} has shape {tuple(backbone[key].shape)}, expected {tuple(ref.shape)}"
            )
    model.load_state_dict(backbone, strict=False)


def _unknown_model_error(model_name: str) -> ValueError:
    close = difflib.get_close_matches(model_name, timm.list_models(), n=5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    return ValueError(
        f"unknown timm model {model_name!r}.{hint} List names with "
        f"`python -c \"import timm; print(timm.list_models('*{model_name.split('.')[0][:8]}*'))\"` "
        "(timm.list_models(pretrained=True) for those with weights)"
    )


def build_timm(
    model_name: str,
    pretrained: bool = False,
    weights: str | None = None,
    img_size: int | None = None,
) -> nn.Module:
    """timm model with a 1-logit head; `weights` (safetensors) overrides hub download for `pretrained`."""
    kwargs = {}
    cfg = timm.models.get_pretrained_cfg(model_name)
    if img_size and cfg is not None and cfg.fixed_input_size:
        kwargs["img_size"] = img_size  # e.g. ViTs size their position embeddings from it
    model = timm.create_model(model_name, pretrained=pretrained and not weights, num_classes=1, **kwargs)
    if weights:
        load_backbone(model, load_state_dict_file(weights), source=str(weights))
    return model


def timm_info(name: str) -> ModelInfo:
    """Registry entry for `timm:<model_name>` (mean, std and input size from timm's pretrained_cfg)."""
    model_name = name.removeprefix(PREFIX)
    if not model_name or not timm.is_model(model_name):
        raise _unknown_model_error(model_name)
    cfg = timm.models.get_pretrained_cfg(model_name)
    mean = tuple(cfg.mean) if cfg is not None else (0.485, 0.456, 0.406)
    std = tuple(cfg.std) if cfg is not None else (0.229, 0.224, 0.225)
    img_size = int(cfg.input_size[-1]) if cfg is not None else 224
    return ModelInfo(
        name=name,
        build=partial(build_timm, model_name),
        default_img_size=img_size,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        description=f"timm model {model_name}",
    )
