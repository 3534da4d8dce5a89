"""`predict --report DIR`: one page summing up a run over many files.

Counts per verdict, a histogram of P(fake) with the threshold and the uncertain band marked, and a
picture grid of the most suspicious images (annotated like `--save`), then the files that could not
be read. Only the top pictures are kept in memory, so a run over 100,000 files costs little more
than one over 100.
"""

from __future__ import annotations

import base64
import heapq
import io
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.fileio import atomic_write_bytes, atomic_write_text
from deepfake_detector.inference.annotate import annotate, verdict_text
from deepfake_detector.inference.results import Prediction
from deepfake_detector.spec import ModelSpec
from deepfake_detector.templating import html_templates

TEMPLATES = Path(__file__).parent / "templates"

TOP_PICTURES = 24
THUMB_SIDE = 320
MAX_LISTED_ERRORS = 200


class SummaryPage:
    """Collects a run's predictions (`add`, `add_video`) and writes DIR/index.html + DIR/histogram.png."""

    def __init__(self, out_dir: str | Path, spec: ModelSpec, detects: str = "", top: int = TOP_PICTURES):
        self.out_dir = Path(out_dir)
        self.spec = spec
        self.detects = detects
        self.top = top
        self.probs: list[float] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[tuple[str, str]] = []
        self.suspicious: list[tuple[float, int, str, str]] = []  # min-heap of (P(fake), order, text, uri)
        self.order = itertools.count()

    def add(self, batch: list[Any], predictions: list[Prediction]) -> None:
        for prepared, prediction in zip(batch, predictions, strict=True):
            self._count(prediction, "images")
            if prediction.prob_fake is not None and prepared.image is not None:
                self._keep(prediction, lambda p=prepared, q=prediction: annotate(p.image, q, THUMB_SIDE))

    def add_video(self, prediction: Prediction) -> None:
        self._count(prediction, "videos")

    def _count(self, prediction: Prediction, kind: str) -> None:
        self.counts[kind] += 1
        if prediction.error:
            self.counts["errors"] += 1
            if len(self.errors) < MAX_LISTED_ERRORS:
                self.errors.append((prediction.path, prediction.error))
        elif prediction.prob_fake is None:
            self.counts["no face"] += 1
        else:
            self.counts[prediction.label] += 1
            self.probs.append(float(prediction.prob_fake))

    def _keep(self, prediction: Prediction, picture: Any) -> None:
        key = float(prediction.prob_fake or 0.0)
        if len(self.suspicious) >= self.top and key <= self.suspicious[0][0]:
            return  # not among the most suspicious: no picture made
        entry = (
            key,
            next(self.order),
            f"{prediction.path}: {verdict_text(prediction)}",
            _jpeg_uri(picture()),
        )
        if len(self.suspicious) < self.top:
            heapq.heappush(self.suspicious, entry)
        else:
            heapq.heapreplace(self.suspicious, entry)

    def close(self) -> Path:
        """Write the page; returns its path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        histogram = self.out_dir / "histogram.png"
        atomic_write_bytes(histogram, histogram_png(self.probs, self.spec))
        env = html_templates(TEMPLATES)
        rows = [
            (k, self.counts[k])
            for k in ("images", "videos", "fake", "real", "uncertain", "no face", "errors")
        ]
        page = env.get_template("summary.html").render(
            spec=self.spec,
            detects=self.detects,
            counts=[(k, v) for k, v in rows if v or k in ("images", "fake", "real")],
            scored=len(self.probs),
            pictures=[(text, uri, p) for p, _, text, uri in sorted(self.suspicious, reverse=True)],
            errors=self.errors,
            more_errors=self.counts["errors"] - len(self.errors),
        )
        path = self.out_dir / "index.html"
        atomic_write_text(path, page)
        return path


def histogram_png(probs: list[float], spec: ModelSpec) -> bytes:
    """P(fake) of every scored input, with the threshold dashed and the uncertain band shaded."""
    from matplotlib.figure import Figure

    rule = spec.rule
    figure = Figure(figsize=(6.4, 3.2), dpi=110, layout="constrained")
    ax = figure.subplots()
    ax.hist(np.asarray(probs, dtype=float), bins=np.linspace(0, 1, 41), color="#555")
    ax.axvspan(rule.real_below, rule.fake_at, color="#e08c00", alpha=0.2, lw=0, label="uncertain")
    ax.axvline(rule.threshold, color="#222", ls="--", lw=1, label=f"threshold {rule.threshold:.3f}")
    ax.set(xlim=(0, 1), xlabel="P(fake)", ylabel="files", title=f"P(fake) of {len(probs)} scored files")
    ax.legend(loc="upper center", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _jpeg_uri(picture: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(picture[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:  # pragma: no cover - an RGB uint8 array always encodes
        raise RuntimeError("cannot encode a thumbnail")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
