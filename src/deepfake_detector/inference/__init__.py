"""Inference: `Detector` (load a model, score arrays, files and folders), ONNX export, faces, heatmaps.

Importing this package does not import torch; only the PyTorch engine, export and heatmaps do.
"""

from deepfake_detector.inference.detector import Detector
from deepfake_detector.inference.results import FaceResult, Prediction

__all__ = ["Detector", "FaceResult", "Prediction"]
