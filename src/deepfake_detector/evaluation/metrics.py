"""Every reported number for one set of scores, from scikit-learn; positive class = fake (label 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from deepfake_detector.evaluation.calibration import expected_calibration_error
from deepfake_detector.evaluation.threshold import check_scores
from deepfake_detector.verdict import DecisionRule

METRIC_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "eer",
    "log_loss",
    "brier",
    "ece",
    "threshold",
    "n_real",
    "n_fake",
    "fraction_flagged_fake",
    "confusion_matrix",
)
# Undefined (None) when the set holds only one class: they compare the two classes.
TWO_CLASS_METRICS = ("balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer")


def equal_error_rate(labels: np.ndarray, probs: np.ndarray) -> float:
    """(FPR + FNR) / 2 at the ROC point where the two rates are closest (as torchmetrics' BinaryEER)."""
    fpr, tpr, _ = roc_curve(labels, probs, drop_intermediate=False)
    gap = np.abs((1.0 - tpr) - fpr)
    # Rounding noise must not decide between equally close points: take the first (highest threshold).
    best = int(np.flatnonzero(gap <= gap.min() + 1e-12)[0])
    return float((fpr[best] + 1.0 - tpr[best]) / 2.0)


def verdict_metrics(labels: np.ndarray, probs: np.ndarray, rule: DecisionRule) -> dict[str, Any]:
    """What users see (verdict.py's fake / real / uncertain): the share left uncertain and the
    accuracy of the verdicts given (None when every image is uncertain)."""
    labels, probs = check_scores(labels, probs)
    verdicts = np.array([rule.label(float(p)) for p in probs])
    decided = verdicts != "uncertain"
    correct = (verdicts[decided] == "fake") == (labels[decided] == 1)
    return {
        "uncertain_band": float(rule.band),
        "uncertain_fraction": float(1.0 - decided.mean()) if labels.size else 0.0,
        "decided_accuracy": float(correct.mean()) if decided.any() else None,
    }


def compute_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, balanced accuracy, precision, recall, F1, ROC-AUC, AP, EER, log loss, Brier, ECE, counts.

    A sample is called fake when prob >= threshold. Metrics in TWO_CLASS_METRICS are None when
    the set lacks a class; `fraction_flagged_fake` is always given.
    """
    labels, probs = check_scores(labels, probs)
    if labels.size == 0:
        raise ValueError("cannot compute metrics on an empty set of scores")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    preds = (probs >= threshold).astype(np.int64)
    both = np.unique(labels).size == 2
    tn, fp, fn, tp = confusion_matrix(labels, preds, labels=[0, 1]).ravel()
    metrics: dict[str, Any] = {
        "accuracy": float(accuracy_score(labels, preds)),
        "balanced_accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
        "average_precision": None,
        "eer": None,
        "log_loss": float(log_loss(labels, probs, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, probs, pos_label=1)),
        "ece": expected_calibration_error(labels, probs),
        "threshold": float(threshold),
        "n_real": int(np.sum(labels == 0)),
        "n_fake": int(np.sum(labels == 1)),
        "fraction_flagged_fake": float(preds.mean()),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }
    if both:
        metrics.update(
            balanced_accuracy=float(balanced_accuracy_score(labels, preds)),
            precision=float(precision_score(labels, preds, zero_division=0.0)),
            recall=float(recall_score(labels, preds)),
            f1=float(f1_score(labels, preds, zero_division=0.0)),
            roc_auc=float(roc_auc_score(labels, probs)),
            average_precision=float(average_precision_score(labels, probs)),
            eer=equal_error_rate(labels, probs),
        )
    return metrics
