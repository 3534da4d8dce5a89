"""deepfake-detector: tell real face images from deepfakes.

from deepfake_detector import Detector
Detector.load("default").predict(["photo.jpg"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["Detector", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use so `import deepfake_detector` stays light (and torch-free).
    if name == "Detector":
        from deepfake_detector.inference.detector import Detector

        return Detector
    raise AttributeError(f"module 'deepfake_detector' has no attribute {name!r}")
