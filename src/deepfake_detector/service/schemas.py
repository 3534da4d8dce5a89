"""Response bodies of the HTTP API (they also document it in /openapi.json and /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class FaceOut(BaseModel):
    box: list[int] = Field(
        description="x1, y1, x2, y2 in the pixels of the (EXIF-rotated) image; x2/y2 exclusive"
    )
    prob_fake: float = Field(description="calibrated probability that this face is a deepfake")
    label: Literal["fake", "real", "uncertain"] = Field(description="this face's verdict, by the same rule")
    heatmap_png: str | None = Field(
        None, description="Grad-CAM overlay of the face, base64 PNG (?heatmap=true)"
    )


class ImageOut(BaseModel):
    width: int
    height: int
    format: str


class VerdictOut(BaseModel):
    """The fields every answer shares with `predict`'s JSON rows and Python's Prediction.to_dict()."""

    path: str = Field(description="the uploaded file's name, as a label only")
    label: Literal["fake", "real", "uncertain", ""] = Field(
        description="fake at prob_fake >= threshold + uncertain_band (and > 0.5), real below threshold - "
        "uncertain_band (and < 0.5), uncertain between; judged on the most suspicious face; '' when no "
        "face was found (note says so)"
    )
    prob_fake: float | None = Field(description="P(fake) of the most suspicious face; null when none")
    confidence: float | None = Field(
        description="probability of the label: prob_fake for fake, 1 - prob_fake for real (always > 0.5); "
        "null when uncertain or no face"
    )
    threshold: float = Field(description="the model's decision threshold on P(fake)")
    uncertain_band: float = Field(description="half-width of the uncertain band around the threshold")
    face_count: int = Field(description="faces scored")
    faces: list[FaceOut]
    error: str = Field(description="always '' in a 200 answer (errors are HTTP errors)")
    note: str = Field(
        description="how the image was read, e.g. 'face crop (detection skipped)', 'no face found'"
    )


class PredictionOut(VerdictOut):
    image: ImageOut
    heatmap_error: str | None = None
    timing_ms: dict[str, float] = Field(
        description="decode, faces (detection), inference, heatmap, queue (waiting for a slot) and total"
    )


class BatchItemOut(BaseModel):
    path: str = Field(description="the uploaded file's name")
    status: int = Field(description="200, or the HTTP status this file alone would have got (413, 422)")
    error: str | None = None
    result: PredictionOut | None = None


class BatchOut(BaseModel):
    count: int
    errors: int
    results: list[BatchItemOut]
    timing_ms: dict[str, float]


class ModelOut(BaseModel):
    name: str
    version: str
    architecture: str
    engine: str
    threshold: float
    threshold_method: str
    uncertain_band: float
    rule: str = Field(description="how P(fake) becomes fake / real / uncertain, in words")
    temperature: float
    input_size: int
    class_names: list[str]
    crop: dict[str, Any]  # how faces are cut (data/crop.py CropSpec)
    data_hash: str
    trained_on: list[str]
    weights_sha256: str
    metrics: dict[str, Any]
    limits: dict[str, Any]
    detects: str = Field(description="one line: the kinds of fake it was trained on, and what it was not")
    model_card: str = Field(description="the model card (MODEL_CARD.md), markdown")


class ErrorOut(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "malformed request body"},
    408: {"model": ErrorOut, "description": "request body not received within the upload timeout"},
    413: {"model": ErrorOut, "description": "upload too large, or too many files"},
    415: {"model": ErrorOut, "description": "content type is neither multipart/form-data nor an image"},
    422: {
        "model": ErrorOut,
        "description": "not a decodable image, or over the pixel limit (the reason says)",
    },
    503: {"model": ErrorOut, "description": "queue full (see Retry-After) or model not loaded"},
    504: {"model": ErrorOut, "description": "no answer within the request timeout"},
}


def upload_body(media: str) -> dict[str, Any]:
    """OpenAPI request body of one uploaded file: multipart `file`, or the raw bytes as `media`."""
    binary = {"type": "string", "format": "binary"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": {"file": binary}}
                },
                media: {"schema": binary},
                "application/octet-stream": {"schema": binary},
            },
        }
    }


SINGLE_UPLOAD_BODY: dict[str, Any] = upload_body("image/*")

BATCH_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}
