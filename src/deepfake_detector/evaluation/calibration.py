"""Temperature scaling (fitted on validation) and calibration error / reliability curves."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit
from sklearn.calibration import calibration_curve

from deepfake_detector.evaluation.threshold import check_scores

# A temperature outside this range means the logits are broken, not miscalibrated.
TEMPERATURE_BOUNDS = (0.01, 100.0)


def _nll(labels: np.ndarray, logits: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    return float(-np.mean(labels * log_expit(z) + (1 - labels) * log_expit(-z)))


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of sigmoid(logits / T) (Guo et al., 2017).

    Searched over log T (bounded Brent), so T stays positive and the search is scale-free.
    """
    labels = np.asarray(labels).reshape(-1)
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if labels.shape != logits.shape:
        raise ValueError(f"{labels.size} labels but {logits.size} logits")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    if np.unique(labels).size < 2:
        raise ValueError("fitting a temperature needs both real and fake samples")
    labels = labels.astype(np.float64)
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: _nll(labels, logits, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


def reliability_curve(
    labels: np.ndarray, probs: np.ndarray, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fraction fake, mean predicted probability, count) for each non-empty uniform bin of [0, 1]."""
    labels, probs = check_scores(labels, probs)
    if labels.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty.astype(np.int64)
    # calibration_curve rejects single-class targets unless pos_label is explicit.
    prob_true, prob_pred = calibration_curve(labels, probs, n_bins=n_bins, strategy="uniform", pos_label=1)
    # The same binning calibration_curve uses, to recover the counts it does not return.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], probs), minlength=n_bins)
    return prob_true, prob_pred, counts[counts > 0]


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Count-weighted mean |fraction fake - mean probability| over uniform probability bins (L1 ECE)."""
    prob_true, prob_pred, counts = reliability_curve(labels, probs, n_bins)
    if counts.sum() == 0:
        raise ValueError("expected calibration error of an empty set")
    return float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
