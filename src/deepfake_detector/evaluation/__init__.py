"""Honest evaluation: metrics (scikit-learn), threshold and temperature chosen on validation only,
robustness to social-media perturbations, cross-dataset reports.

Names are imported on first use, so `import deepfake_detector.evaluation` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "choose_threshold": "threshold",
    "THRESHOLD_METHODS": "threshold",
    "fit_temperature": "calibration",
    "expected_calibration_error": "calibration",
    "reliability_curve": "calibration",
    "compute_metrics": "metrics",
    "equal_error_rate": "metrics",
    "METRIC_KEYS": "metrics",
    "PERTURBATIONS": "robustness",
    "perturb": "robustness",
    "robustness_table": "robustness",
    "evaluate_datasets": "evaluate",
    "DatasetResult": "evaluate",
    "write_report": "report",
    "explain": "interpret",
    "render_conclusion": "conclusion",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
