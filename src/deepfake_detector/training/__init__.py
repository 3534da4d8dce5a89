"""Training: presets (configs/*.yaml), the Lightning module and data, and `train()`."""

from deepfake_detector.training.config import ConfigError, TrainConfig, list_presets, load_config
from deepfake_detector.training.fit import RunError, RunResult, train

__all__ = ["ConfigError", "RunError", "RunResult", "TrainConfig", "list_presets", "load_config", "train"]
