"""The decision threshold, chosen on validation scores only (never on the set being reported)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

THRESHOLD_METHODS = ("balanced_accuracy", "eer", "fpr")


def check_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0 real / 1 fake) and probabilities as flat arrays of equal length, values validated."""
    labels = np.asarray(labels).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if labels.shape != probs.shape:
        raise ValueError(f"{labels.size} labels but {probs.size} probabilities")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"labels must be 0 (real) or 1 (fake), got values {sorted(set(labels.tolist()))[:5]}"
        )
    if not np.isfinite(probs).all():
        raise ValueError("probabilities contain NaN or infinite values")
    if probs.size and (probs.min() < 0.0 or probs.max() > 1.0):
        raise ValueError(f"probabilities must lie in [0, 1], got [{probs.min():.4g}, {probs.max():.4g}]")
    return labels.astype(np.int64), probs


def choose_threshold(
    labels: np.ndarray, probs: np.ndarray, method: str = "balanced_accuracy", target_fpr: float = 0.05
) -> float:
    """A probability threshold in [0, 1] (fake iff prob >= threshold) from validation scores.

    - "balanced_accuracy": maximises (TPR + TNR) / 2;
    - "eer": the ROC point where the false positive and false negative rates are closest;
    - "fpr": the lowest threshold whose false positive rate on reals is <= target_fpr.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method {method!r}; choose one of {', '.join(THRESHOLD_METHODS)}")
    if method == "fpr" and not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    labels, probs = check_scores(labels, probs)
    if np.unique(labels).size < 2:
        raise ValueError("choosing a threshold needs both real and fake samples")
    # drop_intermediate=False keeps every distinct score, so the chosen point is exact.
    fpr, tpr, thresholds = roc_curve(labels, probs, drop_intermediate=False)
    # thresholds[0] is +inf (nothing flagged). As a probability it becomes 1.0, which flags nothing
    # only if no score is exactly 1.0; otherwise that point is unreachable and is left out.
    reachable = np.ones(thresholds.size, dtype=bool)
    reachable[0] = probs.max() < 1.0
    if method == "balanced_accuracy":
        objective = tpr + (1.0 - fpr)
        best = int(np.argmax(np.where(reachable, objective, -np.inf)))
    elif method == "eer":
        best = int(np.argmin(np.where(reachable, np.abs((1.0 - tpr) - fpr), np.inf)))
    else:
        # fpr never decreases along the curve: the lowest threshold within target is the last such point.
        within = np.flatnonzero((fpr <= target_fpr) & reachable)
        best = int(within[-1]) if within.size else 0
    return float(np.clip(thresholds[best], 0.0, 1.0))
