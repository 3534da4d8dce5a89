"""Training: presets (configs/*.yaml), the Lightning module and data, and `train()`.

`train` and friends load Lightning on first use, so importing the presets stays light.
"""

from __future__ import annotations

from typing import Any

from deepfake_detector.training.config import ConfigError, TrainConfig, list_presets, load_config

__all__ = ["ConfigError", "RunError", "RunResult", "TrainConfig", "list_presets", "load_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("RunError", "RunResult", "train"):
        from deepfake_detector.training import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'deepfake_detector.training' has no attribute {name!r}")
