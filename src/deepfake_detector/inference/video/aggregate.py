"""From per-face scores to a score per track and a verdict per video.

Per track, two aggregates of the faces' calibrated fake probabilities are always computed:
- `mean`: the plain mean;
- `confident` (the default): with k = a quarter of the faces (at least one), the mean of the k
  highest scores when all of them are at or above the decision threshold, i.e. when at least a
  quarter of the frames look fake; otherwise the mean of the k lowest scores. A face swap rarely
  shows in every frame (pose, blur, occlusion, or only part of the video is manipulated): the
  frames where the model sees it carry the evidence and decide, instead of being averaged away
  by the unsure or clean ones. Without that evidence, the frames where the model is surest the
  face is real give the score. It is the DFDC winners' "confident strategy" (fake evidence
  first) with a quantile instead of fixed cut-offs, and the model's threshold rather than 0.5
  as the line, since that is where the verdict flips. One odd frame alone decides only in a
  track of at most four faces.

Per video, like a photo with several faces, the verdict comes from the most suspicious track:
prob_fake is the highest track score. A track seen in fewer than MIN_TRACK_FACES sampled frames
is reported but does not decide while a longer track exists (a detector false positive in one
frame should not outvote a person seen throughout); when no track is that long (few frames
sampled, or a long video sampled so sparsely that faces never overlap) all faces are pooled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Aggregate = Literal["confident", "mean"]
AGGREGATES: tuple[str, ...] = ("confident", "mean")
CONFIDENT_FRACTION = 0.25
MIN_TRACK_FACES = 3


def mean_score(probs: Sequence[float]) -> float:
    if len(probs) == 0:
        raise ValueError("no scores to aggregate")
    return float(np.mean(np.asarray(probs, dtype=np.float64)))


def confident_score(probs: Sequence[float], threshold: float, fraction: float = CONFIDENT_FRACTION) -> float:
    """Mean of the k = ceil(fraction * n) highest scores if all of them are >= threshold, else of
    the k lowest (see the module docstring)."""
    if len(probs) == 0:
        raise ValueError("no scores to aggregate")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = np.sort(np.asarray(probs, dtype=np.float64))
    keep = max(1, math.ceil(fraction * len(values)))
    top = values[-keep:]
    if top.min() >= threshold:
        return float(top.mean())
    return float(values[:keep].mean())


def track_score(probs: Sequence[float], method: Aggregate, threshold: float) -> float:
    if method == "mean":
        return mean_score(probs)
    if method == "confident":
        return confident_score(probs, threshold)
    raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {method!r}")


def deciding_tracks(face_counts: dict[int, int], min_faces: int = MIN_TRACK_FACES) -> list[int]:
    """Ids of the tracks allowed to decide the verdict: those with at least `min_faces` faces,
    or [] when none is that long (then all faces are pooled)."""
    return sorted(track for track, count in face_counts.items() if count >= min_faces)
