"""Scoring whole datasets: in this process or on a Ray cluster, with the same rows either way."""

from deepfake_detector.scale.ray_predict import (
    RESULT_SCHEMA,
    BatchScorer,
    SourceError,
    list_source,
    predict_dataset,
)

__all__ = ["RESULT_SCHEMA", "BatchScorer", "SourceError", "list_source", "predict_dataset"]
