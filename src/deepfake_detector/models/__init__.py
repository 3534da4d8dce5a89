"""Model zoo: `create_model(name)` over a decorator registry, and safe model bundles on disk."""

from deepfake_detector.models.bundle import InvalidModelFile, load_bundle, save_bundle
from deepfake_detector.models.registry import (
    count_parameters,
    create_model,
    list_models,
    model_info,
    register_model,
)
from deepfake_detector.models.weights import UntrustedWeights, load_state_dict_file

__all__ = [
    "InvalidModelFile",
    "UntrustedWeights",
    "count_parameters",
    "create_model",
    "list_models",
    "load_bundle",
    "load_state_dict_file",
    "model_info",
    "register_model",
    "save_bundle",
]
