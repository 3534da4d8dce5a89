"""The one decision rule every output uses: P(fake) -> "fake", "real" or "uncertain".

A calibrated model's P(fake) near its threshold is a coin toss, so a band around the threshold is
reported as "uncertain" instead of a verdict that would flip with the next JPEG re-save. The rule
also never lets a label contradict its own probability: "fake" needs P(fake) > 0.5 and "real" needs
P(fake) < 0.5, whatever the threshold. So with threshold t and band b:

    fake       P(fake) >= t + b  and  P(fake) > 0.5
    real       P(fake) <  t - b  and  P(fake) < 0.5
    uncertain  everything in between

`confidence` is the probability of the reported label (P(fake) for fake, 1 - P(fake) for real), so
it is always above 0.5; an uncertain verdict has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LABELS = ("fake", "real", "uncertain")
NO_VERDICT = ""  # nothing was scored: an unreadable file or no face found (`note` / `error` say which)
DEFAULT_UNCERTAIN_BAND = 0.05


@dataclass(frozen=True)
class DecisionRule:
    """Threshold and uncertain band of a model (model.json `threshold`, `uncertain_band`)."""

    threshold: float
    band: float = DEFAULT_UNCERTAIN_BAND

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"threshold must be a probability in [0, 1], got {self.threshold}")
        if not (math.isfinite(self.band) and 0.0 <= self.band < 0.5):
            raise ValueError(f"uncertain band must be in [0, 0.5), got {self.band}")

    def label(self, prob_fake: float) -> str:
        if prob_fake >= self.threshold + self.band and prob_fake > 0.5:
            return "fake"
        if prob_fake < self.threshold - self.band and prob_fake < 0.5:
            return "real"
        return "uncertain"

    @staticmethod
    def confidence(prob_fake: float | None, label: str) -> float | None:
        """Probability of the reported label; None for uncertain or no verdict."""
        if prob_fake is None or label not in ("fake", "real"):
            return None
        return prob_fake if label == "fake" else 1.0 - prob_fake

    @property
    def fake_at(self) -> float:
        """The lower edge of "fake" (fake also needs P(fake) > 0.5)."""
        return max(self.threshold + self.band, 0.5)

    @property
    def real_below(self) -> float:
        """The upper edge of "real": the band's lower edge, or 0.5."""
        return min(self.threshold - self.band, 0.5)

    def describe(self) -> str:
        """One line for people, e.g. "fake at P(fake) >= 0.583, real below 0.483, uncertain between"."""
        return f"fake at P(fake) >= {self.fake_at:.3f}, real below {self.real_below:.3f}, uncertain between"
