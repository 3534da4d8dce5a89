"""HTTP service and web page: `create_app()` builds the FastAPI app, `deepfake-detector serve` runs it."""

from deepfake_detector.service.app import create_app

__all__ = ["create_app"]
