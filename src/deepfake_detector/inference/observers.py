"""What watches a predict run's scored batches besides the results file: Grad-CAM pages (--heatmap),
annotated copies (--save) and the summary page (--report). Each has `add(batch, predictions)`,
optionally `add_video(prediction)`, and `close()` (called even when the run stops early)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_observers(
    detector: Any, heatmap_dir: str | Path | None, save_dir: str | Path | None, report_dir: str | Path | None
) -> tuple[Any, list[Any]]:
    """(the Grad-CAM writer or None, every observer asked for)."""
    observers: list[Any] = []
    explainer = None
    if heatmap_dir is not None:
        from deepfake_detector.inference.heatmap import HeatmapWriter

        explainer = HeatmapWriter(detector.torch_model(), detector.spec, heatmap_dir)
        observers.append(explainer)
    if save_dir is not None:
        from deepfake_detector.inference.annotate import AnnotatedWriter

        observers.append(AnnotatedWriter(save_dir))
    if report_dir is not None:
        from deepfake_detector.inference.summary_page import SummaryPage
        from deepfake_detector.modelcard import detects_line

        observers.append(SummaryPage(report_dir, detector.spec, detects_line(detector.spec)))
    return explainer, observers
