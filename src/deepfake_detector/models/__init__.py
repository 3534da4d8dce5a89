"""Model zoo: `create_model(name)` over a decorator registry, and safe model bundles on disk.

The names below are imported on first use (PEP 562), so torch-free subpackages such as
`deepfake_detector.models.clip` can be imported by a slim install without pulling in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "InvalidModelFile": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    "count_parameters": "registry",
    "create_model": "registry",
    "list_models": "registry",
    "model_info": "registry",
    "register_model": "registry",
    "UntrustedWeights": "weights",
    "load_state_dict_file": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
