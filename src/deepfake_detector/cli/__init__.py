"""Command line: one module per command, all registered on `app`. Heavy imports stay inside commands."""

# noqa: F401 below: importing a command module registers its commands.
from deepfake_detector.cli import (
    eda_cmd,  # noqa: F401
    evaluate_cmd,  # noqa: F401
    export_cmd,  # noqa: F401
    info_cmd,  # noqa: F401
    predict_cmd,  # noqa: F401
    predict_dataset_cmd,  # noqa: F401
    push_cmd,  # noqa: F401
    serve_cmd,  # noqa: F401
    train_cmd,  # noqa: F401
)
from deepfake_detector.cli.app import app

__all__ = ["app"]
