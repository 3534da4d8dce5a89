"""The "what this means" sentences follow the measured numbers."""

from __future__ import annotations

from typing import Any

from deepfake_detector.evaluation.interpret import explain, explain_dataset


def measured(auc: float | None, tn: int, fp: int, fn: int, tp: int, ece: float = 0.02, **extra: Any) -> dict:
    return {
        "roc_auc": auc,
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n_real": tn + fp,
        "n_fake": fn + tp,
        "ece": ece,
        "threshold": 0.5,
        **extra,
    }


def test_each_auc_band_has_its_sentence() -> None:
    metrics = {
        "dfdc": measured(0.95, 90, 10, 8, 92),
        "stylegan-ffhq": measured(0.51, 50, 50, 48, 52),
        "inverted": measured(0.31, 40, 60, 70, 30),
        "mid": measured(0.82, 80, 20, 25, 75),
        "low": measured(0.66, 70, 30, 40, 60),
    }
    sentences = explain(metrics, trained_on=["../shared/data/dfdc"])
    text = "\n".join(sentences)
    assert "Reliable on dfdc (ROC-AUC 0.95)" in text
    assert (
        "At chance on stylegan-ffhq (ROC-AUC 0.51): this model does not detect this kind of fake "
        "(it was not trained on it)" in text
    )
    assert "Worse than chance on inverted (ROC-AUC 0.31)" in text
    assert "Useful but not reliable on mid, data it was not trained on (ROC-AUC 0.82)" in text
    assert "Weak on low, data it was not trained on (ROC-AUC 0.66)" in text
    assert "calls 10% of the real images of dfdc fake (10 of 100, the real-called-fake rate)" in text
    assert "misses 8% of its fakes (8 of 100)" in text
    assert sentences[-1] == (
        "In short: reliable on dfdc; at chance on stylegan-ffhq; worse than chance on inverted; "
        "useful on mid; weak on low."
    )
    # A model at chance has nothing to calibrate: no ECE sentence for it.
    assert "calibrated on stylegan-ffhq" not in text and "well calibrated on dfdc (ECE 0.020)" in text


def test_trained_on_comes_from_seen_in_training_when_given() -> None:
    (first, *_) = explain_dataset("x", measured(0.5, 50, 50, 50, 50), trained=True)
    assert "although it was trained on this kind of data" in first
    sentences = explain({"x": measured(0.5, 50, 50, 50, 50, seen_in_training=True)}, trained_on=[])
    assert "although it was trained" in sentences[0]


def test_calibration_one_class_and_small_samples() -> None:
    rough = explain_dataset("a", measured(0.93, 95, 5, 5, 95, ece=0.09), trained=True)
    assert any("roughly calibrated on a (ECE 0.090)" in s for s in rough)
    poor = explain_dataset("a", measured(0.93, 95, 5, 5, 95, ece=0.3), trained=True)
    assert any("poorly calibrated on a (ECE 0.300): read it as a ranking score" in s for s in poor)
    only_real = explain_dataset("photos", measured(None, 18, 2, 0, 0), trained=False)
    assert only_real[0] == (
        "photos holds only real images: at its threshold (0.50) 10% of them are called fake "
        "(2 of 20, the real-called-fake rate)."
    )
    assert only_real[-1] == "Only 20 real and 0 fake images of photos were scored: these figures are rough."
    assert explain_dataset("empty", {"n_real": 0, "n_fake": 0}, trained=False) == []
