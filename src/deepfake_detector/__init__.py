"""deepfake-detector: tell real face images from deepfakes."""

__version__ = "0.1.0"

__all__ = ["__version__"]
