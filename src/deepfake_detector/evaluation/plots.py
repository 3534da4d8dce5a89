"""Evaluation figures as PNG bytes.

Figures are built with matplotlib's object API (no pyplot): no display, no global figure state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

from deepfake_detector.evaluation.calibration import reliability_curve
from deepfake_detector.evaluation.robustness import PERTURBATIONS, severity_key

CLASS_LABELS = ("real", "fake")
METRIC_LABELS = {"roc_auc": "ROC-AUC", "accuracy": "accuracy"}


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def confusion_matrix_png(matrix: Sequence[Sequence[int]], title: str) -> bytes:
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.subplots()
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=CLASS_LABELS).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d"
    )
    ax.set_title(title)
    return to_png(fig)


def roc_png(labels: np.ndarray, probs: np.ndarray, title: str) -> bytes:
    fig = Figure(figsize=(4, 3.6))
    ax = fig.subplots()
    RocCurveDisplay.from_predictions(labels, probs, pos_label=1, name="model", ax=ax, plot_chance_level=True)
    ax.set_xlabel("false positive rate (reals flagged fake)")
    ax.set_ylabel("true positive rate (fakes caught)")
    ax.set_title(title)
    return to_png(fig)


def pr_png(labels: np.ndarray, probs: np.ndarray, title: str) -> bytes:
    fig = Figure(figsize=(4, 3.6))
    ax = fig.subplots()
    PrecisionRecallDisplay.from_predictions(
        labels, probs, pos_label=1, name="model", ax=ax, plot_chance_level=True
    )
    ax.set_xlabel("recall (fakes caught)")
    ax.set_ylabel("precision (flagged images that are fake)")
    ax.set_title(title)
    return to_png(fig)


def reliability_png(labels: np.ndarray, probs: np.ndarray, title: str, n_bins: int = 15) -> bytes:
    prob_true, prob_pred, counts = reliability_curve(labels, probs, n_bins)
    fig = Figure(figsize=(4, 4.4))
    ax, ax_hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(prob_pred, prob_true, marker="o", label="model")
    ax.set_ylabel("fraction fake")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    ax_hist.hist(probs, bins=np.linspace(0, 1, n_bins + 1), color="tab:blue", alpha=0.7)
    ax_hist.set_xlabel("predicted probability of fake")
    ax_hist.set_ylabel("images")
    return to_png(fig)


def image_grid_png(
    images: Sequence[np.ndarray], captions: Sequence[str], title: str, columns: int = 8
) -> bytes:
    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    fig = Figure(figsize=(1.6 * columns, 1.85 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return to_png(fig)


def robustness_png(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    clean: Mapping[str, Any],
    title: str,
    metric: str = "roc_auc",
) -> bytes:
    """`metric` against severity rank (1 = mildest), one line per perturbation, clean value as reference."""
    fig = Figure(figsize=(5.6, 3.8))
    ax = fig.subplots()
    if clean.get(metric) is not None:
        ax.axhline(clean[metric], ls="--", color="black", lw=1, label=f"clean ({clean[metric]:.3f})")
    for name, by_severity in table.items():
        perturbation = PERTURBATIONS[name]
        ranks, values = [], []
        for rank, severity in enumerate(perturbation.severities, start=1):
            cell = by_severity.get(severity_key(severity))
            if cell is not None and cell.get(metric) is not None:
                ranks.append(rank)
                values.append(cell[metric])
        levels = ", ".join(severity_key(s) for s in perturbation.severities)
        ax.plot(ranks, values, marker="o", label=f"{name} ({perturbation.parameter} {levels})")
    ax.set_xlabel("severity (1 = mildest)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title)
    return to_png(fig)
