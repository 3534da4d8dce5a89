"""Properties other than the manipulation that tell the classes apart (resolution, format,
compression, ...): a model can learn those instead of the face forgery, so they are flagged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepfake_detector.eda.stats import (
    CATEGORICAL_PROPERTIES,
    NUMERIC_PROPERTIES,
    ImageRecord,
    property_values,
)

AUC_LIMIT = 0.8  # one property alone separating the classes this well is a shortcut
DISTANCE_LIMIT = 0.5  # total variation distance between the classes' category shares


@dataclass(frozen=True)
class PropertyCheck:
    property: str
    measure: str  # "auc" (numeric: how well the value alone ranks fake above real) or "tvd"
    score: float  # AUC folded to >= 0.5, or total variation distance in [0, 1]
    flagged: bool
    detail: str


def separation_auc(real: Sequence[float], fake: Sequence[float]) -> float:
    """ROC AUC of the raw value as a fake-score: P(fake value > real value), ties counted half."""
    sorted_real = np.sort(np.asarray(real, dtype=float))
    fake_values = np.asarray(fake, dtype=float)
    below = np.searchsorted(sorted_real, fake_values, side="left")
    below_or_equal = np.searchsorted(sorted_real, fake_values, side="right")
    wins = below.sum() + 0.5 * (below_or_equal - below).sum()
    return float(wins / (len(sorted_real) * len(fake_values)))


def total_variation(real: Sequence[str], fake: Sequence[str]) -> float:
    share_real, share_fake = Counter(real), Counter(fake)
    keys = set(share_real) | set(share_fake)
    return 0.5 * sum(abs(share_real[k] / len(real) - share_fake[k] / len(fake)) for k in keys)


def _top_shares(values: Sequence[str], n: int = 2) -> str:
    counts = Counter(values).most_common(n)
    return ", ".join(f"{value} {count / len(values):.0%}" for value, count in counts)


def check_properties(real: Sequence[ImageRecord], fake: Sequence[ImageRecord]) -> list[PropertyCheck]:
    """One check per property; `flagged` ones deserve a shortcut warning."""
    checks: list[PropertyCheck] = []
    for name in NUMERIC_PROPERTIES:
        a, b = property_values(real, name), property_values(fake, name)
        if not a or not b:
            continue
        auc = separation_auc(a, b)
        folded = max(auc, 1.0 - auc)
        detail = f"median real {np.median(a):.4g}, fake {np.median(b):.4g}"
        checks.append(PropertyCheck(name, "auc", round(folded, 4), folded >= AUC_LIMIT, detail))
    for name in CATEGORICAL_PROPERTIES:
        a, b = property_values(real, name), property_values(fake, name)
        if not a or not b:
            continue
        distance = total_variation(a, b)
        detail = f"real: {_top_shares(a)}; fake: {_top_shares(b)}"
        checks.append(PropertyCheck(name, "tvd", round(distance, 4), distance >= DISTANCE_LIMIT, detail))
    return checks


def shortcut_warning(check: PropertyCheck) -> str:
    if check.measure == "auc":
        how = f"{check.property} alone separates real from fake with AUC {check.score:.2f}"
    else:
        how = f"{check.property} differs between the classes (total variation {check.score:.2f})"
    return (
        f"shortcut risk: {how} ({check.detail}); a model could learn this property instead of the "
        "manipulation"
    )
