"""One self-contained HTML report (plots inlined as base64 PNG) over every evaluated dataset."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.evaluation import plots
from deepfake_detector.evaluation.interpret import explain, real_called_fake
from deepfake_detector.evaluation.robustness import PERTURBATIONS, severity_key
from deepfake_detector.fileio import atomic_write_bytes, atomic_write_text, printable
from deepfake_detector.spec import ModelSpec
from deepfake_detector.templating import html_templates

if TYPE_CHECKING:
    from deepfake_detector.evaluation.evaluate import DatasetResult

TEMPLATES = Path(__file__).parent / "templates"
HARDEST_K = 8
THUMBNAIL_SIZE = 128

# (key, column title, format) of the cross-dataset table (also `evaluate`'s summary), in order.
TABLE_COLUMNS = (
    ("n_real", "real images", "d"),
    ("n_fake", "fake images", "d"),
    ("accuracy", "accuracy", ".4f"),
    ("balanced_accuracy", "balanced acc.", ".4f"),
    ("precision", "precision", ".4f"),
    ("recall", "recall", ".4f"),
    ("f1", "F1", ".4f"),
    ("roc_auc", "ROC-AUC", ".4f"),
    ("average_precision", "AP", ".4f"),
    ("eer", "EER", ".4f"),
    ("log_loss", "log loss", ".4f"),
    ("brier", "Brier", ".4f"),
    ("ece", "ECE", ".4f"),
    ("fraction_flagged_fake", "flagged fake", ".4f"),
    ("uncertain_fraction", "uncertain", ".4f"),
    ("decided_accuracy", "acc. when decided", ".4f"),
)
ROBUSTNESS_COLUMNS = (
    ("roc_auc", "ROC-AUC", ".4f"),
    ("accuracy", "accuracy", ".4f"),
    ("balanced_accuracy", "balanced acc.", ".4f"),
    ("ece", "ECE", ".4f"),
    ("fraction_flagged_fake", "flagged fake", ".4f"),
)


# (term, meaning) of the glossary at the end of the report.
GLOSSARY = (
    ("ROC-AUC", "The chance that a random fake scores higher than a random real image: 1.0 is perfect, "
     "0.5 is chance, below 0.5 the scores point the wrong way. Independent of the threshold."),
    ("accuracy", "The share of images called correctly at the threshold."),
    ("balanced accuracy", "The mean of the share of real images called real and of fakes called fake: "
     "accuracy that a class imbalance cannot inflate."),
    ("precision", "Of the images called fake, the share that are fake."),
    ("recall", "Of the fakes, the share called fake (the detection rate)."),
    ("F1", "The harmonic mean of precision and recall (1.0 is perfect)."),
    ("AP", "Average precision: the area under the precision-recall curve; 1.0 is perfect, the share "
     "of fakes in the data is chance."),
    ("EER", "Equal error rate: the error rate at the threshold where real images called fake and "
     "fakes called real are equally common. Lower is better."),
    ("ECE", "Expected calibration error: the mean gap between P(fake) and the observed share of fakes "
     "among images scored alike. Near 0, P(fake) can be read as a probability."),
    ("Brier", "The mean squared gap between P(fake) and the truth (0 or 1). Lower is better; 0.25 is "
     "what always saying 0.5 scores."),
    ("log loss", "The mean of -log P(true class). Lower is better; 0.693 is what always saying 0.5 scores; "
     "confident mistakes cost most."),
    ("real-called-fake rate", "The share of real images called fake (false positive rate): how often "
     "a genuine photo would be flagged."),
    ("flagged fake", "The share of all images called fake (at the threshold, as accuracy counts)."),
    ("uncertain", "The share of images whose P(fake) falls in the uncertain band around the threshold "
     "(or on the other side of 0.5): what predict reports as 'uncertain' instead of a verdict."),
    ("acc. when decided", "Accuracy over the images that got a fake or real verdict, the uncertain "
     "ones left out."),
    ("threshold", "An image is called fake when its calibrated P(fake) is at least this. Chosen on the "
     "model's validation split when it was trained, never on the data reported here."),
    ("temperature", "The logit is divided by this before the sigmoid, so that P(fake) is calibrated; "
     "fitted on the validation split too."),
)  # fmt: skip


def format_value(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def hardest_mistakes(result: DatasetResult, wrong_class: int, k: int = HARDEST_K) -> list[int]:
    """Indices of the k most confident wrong decisions: reals scored most fake, or fakes most real."""
    threshold = result.metrics["threshold"]
    if wrong_class == 0:  # false positives: real images called fake, most confident first
        candidates = np.flatnonzero((result.labels == 0) & (result.probs >= threshold))
        order = np.argsort(-result.probs[candidates], kind="stable")
    else:  # false negatives: fakes called real
        candidates = np.flatnonzero((result.labels == 1) & (result.probs < threshold))
        order = np.argsort(result.probs[candidates], kind="stable")
    return [int(i) for i in candidates[order][:k]]


def _mistakes_grid(result: DatasetResult, wrong_class: int) -> bytes | None:
    images, captions = [], []
    for index in hardest_mistakes(result, wrong_class):
        try:
            images.append(load_image(result.paths[index], size=THUMBNAIL_SIZE))
        except UnreadableImage:
            continue  # the file changed since it was scored; show the others
        name = printable(Path(result.paths[index]).name)  # matplotlib needs valid Unicode
        captions.append(
            f"p(fake)={result.probs[index]:.3f}\n{name if len(name) <= 22 else name[:19] + '...'}"
        )
    if not images:
        return None
    title = "hardest false positives (real called fake)" if wrong_class == 0 else "hardest false negatives"
    return plots.image_grid_png(images, captions, f"{result.name}: {title}")


def _figures(result: DatasetResult) -> dict[str, bytes]:
    both_classes = result.metrics["roc_auc"] is not None
    title = result.name
    figures = {
        "confusion": plots.confusion_matrix_png(
            result.metrics["confusion_matrix"], f"{title} (t={result.metrics['threshold']:.3f})"
        ),
        "reliability": plots.reliability_png(result.labels, result.probs, f"{title}: reliability"),
    }
    if both_classes:
        figures["roc"] = plots.roc_png(result.labels, result.probs, f"{title}: ROC")
        figures["pr"] = plots.pr_png(result.labels, result.probs, f"{title}: precision-recall")
    for key, wrong_class in (("false_positives", 0), ("false_negatives", 1)):
        grid = _mistakes_grid(result, wrong_class)
        if grid is not None:
            figures[key] = grid
    if result.robustness:
        # A one-class set has no AUC; its accuracy (share called correctly) is what changes.
        metric = "roc_auc" if both_classes else "accuracy"
        figures["robustness"] = plots.robustness_png(
            result.robustness,
            result.metrics,
            f"{title}: {plots.METRIC_LABELS[metric]} under perturbations",
            metric,
        )
    return figures


def _robustness_rows(result: DatasetResult) -> list[dict[str, Any]]:
    rows = [{"perturbation": "none (clean)", "severity": "", "cells": result.metrics}]
    for name, by_severity in (result.robustness or {}).items():
        for severity in PERTURBATIONS[name].severities:
            cell = by_severity.get(severity_key(severity))
            if cell is not None:
                rows.append(
                    {
                        "perturbation": name,
                        "severity": f"{PERTURBATIONS[name].parameter} {severity_key(severity)}",
                        "cells": cell,
                    }
                )
    return rows


def write_report(
    out_dir: str | Path, results: Sequence[DatasetResult], spec: ModelSpec, *, model_ref: str = ""
) -> Path:
    """Write DIR/plots/<dataset>_<figure>.png and DIR/report.html (which inlines the same PNGs)."""
    out = Path(out_dir)
    sections = []
    for result in results:
        figures = _figures(result)
        for key, png in figures.items():
            atomic_write_bytes(out / "plots" / f"{result.name}_{key}.png", png)
        sections.append(
            {
                "result": result,
                "figures": {key: _data_uri(png) for key, png in figures.items()},
                "robustness_rows": _robustness_rows(result) if result.robustness else [],
            }
        )
    env = html_templates(TEMPLATES)
    env.filters["fmt"] = format_value
    env.filters["real_called_fake"] = real_called_fake
    measured = {r.name: {**r.metrics, "seen_in_training": r.seen_in_training} for r in results}
    html = env.get_template("report.html").render(
        spec=spec,
        model_ref=model_ref,
        sections=sections,
        columns=TABLE_COLUMNS,
        robustness_columns=ROBUSTNESS_COLUMNS,
        meaning=explain(measured, spec.trained_on),
        training_check=results[0].overlap.check if results else "not checked",
        glossary=GLOSSARY,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    path = out / "report.html"
    atomic_write_text(path, html)
    return path
