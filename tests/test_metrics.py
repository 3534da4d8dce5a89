"""Metrics, threshold choice and temperature scaling against scikit-learn / torchmetrics and known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from torchmetrics.functional.classification import binary_calibration_error, binary_eer

from deepfake_detector.evaluation.calibration import expected_calibration_error, fit_temperature
from deepfake_detector.evaluation.metrics import (
    METRIC_KEYS,
    TWO_CLASS_METRICS,
    compute_metrics,
    equal_error_rate,
)
from deepfake_detector.evaluation.threshold import choose_threshold


@st.composite
def scored_sets(draw: st.DrawFn, min_size: int = 2, max_size: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Labels holding both classes and probabilities in [0, 1] (with ties, 0 and 1 allowed)."""
    n = draw(st.integers(min_size, max_size))
    labels = draw(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda xs: 0 < sum(xs) < len(xs))
    )
    grid = st.integers(0, 20).map(lambda k: k / 20)  # a coarse grid makes ties common
    probs = draw(st.lists(st.one_of(grid, st.floats(0, 1)), min_size=n, max_size=n))
    return np.array(labels), np.array(probs)


@settings(max_examples=40, deadline=None)
@given(scored_sets(), st.floats(0.05, 0.95))
def test_metrics_agree_with_sklearn(data: tuple[np.ndarray, np.ndarray], threshold: float) -> None:
    labels, probs = data
    preds = (probs >= threshold).astype(int)
    m = compute_metrics(labels, probs, threshold)
    assert set(m) == set(METRIC_KEYS)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    assert m["precision"] == pytest.approx(skm.precision_score(labels, preds, zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(labels, preds))
    assert m["f1"] == pytest.approx(skm.f1_score(labels, preds, zero_division=0))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, probs))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(labels, probs))
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs, labels=[0, 1]))
    assert m["brier"] == pytest.approx(np.mean((probs - labels) ** 2))
    assert m["fraction_flagged_fake"] == pytest.approx(preds.mean())
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    assert (tn, fp, fn, tp) == (
        int(np.sum((labels == 0) & (preds == 0))),
        int(np.sum((labels == 0) & (preds == 1))),
        int(np.sum((labels == 1) & (preds == 0))),
        int(np.sum((labels == 1) & (preds == 1))),
    )
    assert (m["n_real"], m["n_fake"]) == (int(np.sum(labels == 0)), int(np.sum(labels == 1)))


@settings(max_examples=30, deadline=None)
@given(scored_sets())
def test_eer_and_ece_agree_with_torchmetrics(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = data
    y = torch.tensor(labels)
    reference_eer = float(binary_eer(torch.tensor(probs), y))  # torchmetrics works in float32
    # Where several ROC points are equally close to FPR == FNR, float32 rounding picks one of them.
    fpr, tpr, _ = skm.roc_curve(labels, probs, drop_intermediate=False)
    gap = np.abs(1 - tpr - fpr)
    tied = np.isclose(gap, gap.min(), rtol=0, atol=1e-6)
    candidates = (fpr[tied] + 1 - tpr[tied]) / 2
    assert np.isclose(candidates, reference_eer, rtol=0, atol=1e-6).any()
    assert equal_error_rate(labels, probs) == pytest.approx(candidates[0])
    # Off the bin edges k/15: scikit-learn closes bins on the right, torchmetrics on the left.
    probs = probs * 0.999 + 0.0005
    reference_ece = float(binary_calibration_error(torch.tensor(probs), y, n_bins=15, norm="l1"))
    assert expected_calibration_error(labels, probs) == pytest.approx(reference_ece, abs=1e-9)


def test_known_cases() -> None:
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    # Reals 0.1..0.6, fakes 0.5..0.95: between 0.5 and 0.6 one real is flagged and one fake missed.
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.5, 0.7, 0.8, 0.9, 0.95])
    m = compute_metrics(labels, probs, threshold=0.55)
    assert m["eer"] == pytest.approx(0.2)
    assert m["confusion_matrix"] == [[4, 1], [1, 4]]
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(0.8)
    assert m["roc_auc"] == pytest.approx(24 / 25)  # only the (0.6 real, 0.5 fake) pair is misordered

    separable = compute_metrics(labels, np.where(labels == 1, 0.9, 0.1), threshold=0.5)
    assert separable["roc_auc"] == separable["average_precision"] == separable["accuracy"] == 1.0
    assert separable["eer"] == 0.0
    assert compute_metrics(labels, np.where(labels == 1, 0.1, 0.9), threshold=0.5)["roc_auc"] == 0.0


def test_ece_zero_when_calibrated_and_large_when_overconfident() -> None:
    # Each probability level holds exactly that fraction of fakes.
    levels = {0.2: (8, 2), 0.5: (5, 5), 0.9: (1, 9)}
    labels = np.concatenate([[0] * n_real + [1] * n_fake for n_real, n_fake in levels.values()])
    probs = np.concatenate([[p] * (n_real + n_fake) for p, (n_real, n_fake) in levels.items()])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-12)
    # Half of the images are fakes whatever the model says, but it says 0.01 or 0.99.
    labels = np.array([0, 1] * 50)
    probs = np.array([0.99] * 50 + [0.01] * 50)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.49)


@pytest.mark.parametrize("only", [0, 1])
def test_one_class_set_gives_none_for_two_class_metrics(only: int) -> None:
    labels = np.full(8, only)
    probs = np.array([0.05, 0.2, 0.4, 0.49, 0.5, 0.7, 0.9, 0.99])
    m = compute_metrics(labels, probs, threshold=0.5)
    for key in TWO_CLASS_METRICS:
        assert m[key] is None, key
    assert m["fraction_flagged_fake"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)
    assert (m["n_real"], m["n_fake"]) == ((8, 0) if only == 0 else (0, 8))
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs, labels=[0, 1]))
    assert m["ece"] is not None and m["brier"] is not None


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="labels but"):
        compute_metrics(np.array([0, 1]), np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compute_metrics(np.array([0, 1]), np.array([0.5, 1.5]), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(np.array([0, 1]), np.array([0.5, np.nan]), 0.5)
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(np.array([]), np.array([]), 0.5)


def _balanced_accuracy_at(labels: np.ndarray, probs: np.ndarray, threshold: float) -> float:
    """Brute-force reference: mean of the share of fakes flagged and the share of reals passed."""
    return (np.mean(probs[labels == 1] >= threshold) + np.mean(probs[labels == 0] < threshold)) / 2


def test_balanced_accuracy_threshold_on_constructed_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.35, 0.6, 0.3, 0.5, 0.55, 0.7, 0.8, 0.9])
    # Cutting at 0.5 misses one fake of six and flags one real of four: (5/6 + 3/4) / 2 = 0.7917;
    # the next best cuts (0.7 and 0.3) reach 0.75.
    assert choose_threshold(labels, probs) == pytest.approx(0.5)
    assert _balanced_accuracy_at(labels, probs, 0.5) == pytest.approx((5 / 6 + 3 / 4) / 2)
    assert _balanced_accuracy_at(labels, probs, 0.7) == _balanced_accuracy_at(labels, probs, 0.3) == 0.75


@settings(max_examples=30, deadline=None)
@given(scored_sets(min_size=4))
def test_balanced_accuracy_threshold_is_optimal(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = data
    chosen = choose_threshold(labels, probs, "balanced_accuracy")
    assert 0.0 <= chosen <= 1.0
    best = max(_balanced_accuracy_at(labels, probs, t) for t in np.append(np.unique(probs), 1.0))
    assert _balanced_accuracy_at(labels, probs, chosen) == pytest.approx(best)


@settings(max_examples=30, deadline=None)
@given(scored_sets(min_size=4), st.floats(0.0, 0.5))
def test_fpr_threshold_respects_target_and_is_lowest(
    data: tuple[np.ndarray, np.ndarray], target: float
) -> None:
    labels, probs = data
    chosen = choose_threshold(labels, probs, "fpr", target_fpr=target)
    reals = probs[labels == 0]

    def fpr_at(t: float) -> float:
        return float(np.mean(reals >= t))

    assert fpr_at(chosen) <= target + 1e-12 or (chosen == 1.0 and fpr_at(np.inf) == 0)
    lower = probs[probs < chosen]
    if lower.size:  # the next lower cut would exceed the target
        assert fpr_at(lower.max()) > target


def test_eer_threshold_balances_error_rates() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    probs = np.clip(rng.normal(0.4, 0.15, 1000) + 0.2 * labels, 0, 1)
    chosen = choose_threshold(labels, probs, "eer")
    preds = probs >= chosen
    fpr, fnr = preds[labels == 0].mean(), 1 - preds[labels == 1].mean()
    assert abs(fpr - fnr) < 0.01
    assert (fpr + fnr) / 2 == pytest.approx(equal_error_rate(labels, probs), abs=0.005)


def test_threshold_errors() -> None:
    with pytest.raises(ValueError, match="both real and fake"):
        choose_threshold(np.zeros(5), np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="unknown threshold method"):
        choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "accuracy")


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fit_temperature_recovers_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(1)
    calibrated_logits = rng.normal(0.0, 2.0, 40_000)
    labels = (rng.random(calibrated_logits.size) < 1 / (1 + np.exp(-calibrated_logits))).astype(int)
    fitted = fit_temperature(labels, calibrated_logits * true_temperature)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    scaled = calibrated_logits * true_temperature
    nll_fitted = skm.log_loss(labels, 1 / (1 + np.exp(-scaled / fitted)))
    assert nll_fitted < skm.log_loss(labels, 1 / (1 + np.exp(-scaled)))


def test_fit_temperature_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both real and fake"):
        fit_temperature(np.ones(4), np.arange(4.0))
