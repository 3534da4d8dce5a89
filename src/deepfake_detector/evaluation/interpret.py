"""What measured numbers mean, in plain sentences: the "what this means" paragraph of the reports.

    explain({"dfdc": metrics, "stylegan-ffhq": metrics}, trained_on=["dfdc"])
    -> ["Reliable on dfdc (ROC-AUC 0.95): ...", "At chance on stylegan-ffhq (ROC-AUC 0.51): ...", ...]

`metrics` is one entry of metrics.json (evaluation/metrics.py compute_metrics, plus
`seen_in_training` when evaluate wrote it). Every sentence states the number it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# ROC-AUC bands: below WORSE the ranking is inverted, up to CHANCE it is a coin toss, from RELIABLE on
# a threshold separates the classes with few mistakes.
WORSE_THAN_CHANCE = 0.45
CHANCE = 0.55
WEAK = 0.75
RELIABLE = 0.9
WELL_CALIBRATED = 0.05  # ECE below this: P(fake) reads as a probability
POORLY_CALIBRATED = 0.15
FEW_IMAGES = 30  # per class: below this a rate moves by several points with one image


def _trained(name: str, metrics: Mapping[str, Any], trained_on: Iterable[str]) -> bool:
    if "seen_in_training" in metrics:
        return bool(metrics["seen_in_training"])
    from deepfake_detector.evaluation.evaluate import seen_in_training

    return seen_in_training(name, trained_on)


def real_called_fake(metrics: Mapping[str, Any]) -> float | None:
    """False positive rate at the threshold: real images called fake / real images (None: no reals
    or no confusion matrix, e.g. metrics of an older model.json)."""
    try:
        (tn, fp), _ = metrics["confusion_matrix"]
        return int(fp) / (int(tn) + int(fp)) if int(tn) + int(fp) else None
    except (KeyError, TypeError, ValueError):
        return None


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def _ranking(name: str, auc: float, trained: bool) -> str:
    unseen = "it was not trained on it" if not trained else "although it was trained on this kind of data"
    if auc < WORSE_THAN_CHANCE:
        return (
            f"Worse than chance on {name} (ROC-AUC {auc:.2f}): it scores the real images as more fake "
            f"than the fakes, so this model does not detect this kind of fake ({unseen})."
        )
    if auc <= CHANCE:
        return (
            f"At chance on {name} (ROC-AUC {auc:.2f}): this model does not detect this kind of fake "
            f"({unseen}); its verdicts here are coin tosses."
        )
    where = f"{name}" if trained else f"{name}, data it was not trained on"
    if auc < WEAK:
        return (
            f"Weak on {where} (ROC-AUC {auc:.2f}): better than chance, but too unreliable to decide "
            "about a single image."
        )
    if auc < RELIABLE:
        return (
            f"Useful but not reliable on {where} (ROC-AUC {auc:.2f}): it tells most fakes from real "
            "images, with many mistakes at any threshold."
        )
    return (
        f"Reliable on {where} (ROC-AUC {auc:.2f}): a random fake scores above a random real image "
        f"{100 * auc:.0f} times in 100."
    )


def _errors(name: str, metrics: Mapping[str, Any]) -> str | None:
    """Real-called-fake and fake-called-real rates at the stored threshold."""
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return None
    (tn, fp), (fn, tp) = matrix
    n_real, n_fake = tn + fp, fn + tp
    at = f"At its threshold ({metrics['threshold']:.2f})" if metrics.get("threshold") is not None else "Here"
    if n_real and n_fake:
        return (
            f"{at} it calls {_pct(fp, n_real)} of the real images of {name} fake ({fp} of {n_real}, "
            f"the real-called-fake rate) and misses {_pct(fn, n_fake)} of its fakes ({fn} of {n_fake})."
        )
    if n_real:
        return (
            f"{name} holds only real images: {at.lower()} {_pct(fp, n_real)} of them are called fake "
            f"({fp} of {n_real}, the real-called-fake rate)."
        )
    return f"{name} holds only fakes: {at.lower()} it catches {_pct(tp, n_fake)} of them ({tp} of {n_fake})."


def _calibration(name: str, ece: float | None, auc: float | None) -> str | None:
    if ece is None or (auc is not None and auc <= CHANCE):
        return None  # a model at chance has nothing to calibrate
    if ece < WELL_CALIBRATED:
        return f"Its P(fake) is well calibrated on {name} (ECE {ece:.3f}): it can be read as a probability."
    if ece < POORLY_CALIBRATED:
        return f"Its P(fake) is roughly calibrated on {name} (ECE {ece:.3f}): read it as approximate."
    return (
        f"Its P(fake) is poorly calibrated on {name} (ECE {ece:.3f}): read it as a ranking score, "
        "not as a probability."
    )


def explain_dataset(name: str, metrics: Mapping[str, Any], trained: bool) -> list[str]:
    """The sentences about one dataset."""
    n_real, n_fake = int(metrics.get("n_real") or 0), int(metrics.get("n_fake") or 0)
    if not n_real + n_fake:
        return []
    auc = metrics.get("roc_auc")
    sentences = [_ranking(name, float(auc), trained)] if auc is not None else []
    for sentence in (_errors(name, metrics), _calibration(name, metrics.get("ece"), auc)):
        if sentence:
            sentences.append(sentence)
    smallest = min(n for n in (n_real, n_fake) if n)
    if smallest < FEW_IMAGES:
        sentences.append(
            f"Only {n_real} real and {n_fake} fake images of {name} were scored: these figures are rough."
        )
    return sentences


def explain(metrics_by_dataset: Mapping[str, Mapping[str, Any]], trained_on: Iterable[str]) -> list[str]:
    """Plain sentences on what the measured numbers mean, dataset by dataset, then a one-line summary
    when several datasets were scored."""
    trained_on = list(trained_on)
    sentences: list[str] = []
    verdicts = []
    for name, metrics in metrics_by_dataset.items():
        sentences.extend(explain_dataset(name, metrics, _trained(name, metrics, trained_on)))
        auc = metrics.get("roc_auc")
        if auc is not None:
            verdicts.append(f"{_band(float(auc))} on {name}")
    if len(verdicts) > 1:
        sentences.append(f"In short: {'; '.join(verdicts)}.")
    return sentences


def _band(auc: float) -> str:
    if auc < WORSE_THAN_CHANCE:
        return "worse than chance"
    if auc <= CHANCE:
        return "at chance"
    if auc < WEAK:
        return "weak"
    return "useful" if auc < RELIABLE else "reliable"
