"""Response bodies of the HTTP API (they also document it in /openapi.json and /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FaceOut(BaseModel):
    box: list[int] = Field(
        description="x1, y1, x2, y2 in the pixels of the (EXIF-rotated) image; x2/y2 exclusive"
    )
    prob_fake: float = Field(description="calibrated probability that this face is a deepfake")
    label: str = Field(description="'fake' when prob_fake >= threshold, else 'real'")
    heatmap_png: str | None = Field(
        None, description="Grad-CAM overlay of the face, base64 PNG (?heatmap=true)"
    )


class ImageOut(BaseModel):
    width: int
    height: int
    format: str


class PredictionOut(BaseModel):
    filename: str = Field(description="the uploaded file's name, as a label only")
    label: str = Field(
        description="'fake' or 'real' from the most suspicious face; '' when no face was found"
    )
    prob_fake: float | None = Field(description="the highest prob_fake over the faces; null when none")
    confidence: float | None = Field(description="probability of the reported label")
    threshold: float
    note: str = Field(
        description="how the image was read, e.g. 'face crop (detection skipped)', 'no face found'"
    )
    faces: list[FaceOut]
    image: ImageOut
    heatmap_error: str | None = None
    timing_ms: dict[str, float] = Field(
        description="decode, faces (detection), inference, heatmap, queue (waiting for a slot) and total"
    )


class BatchItemOut(BaseModel):
    filename: str
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
    temperature: float
    input_size: int
    class_names: list[str]
    crop: dict[str, Any]  # how faces are cut (data/crop.py CropSpec)
    data_hash: str
    trained_on: list[str]
    weights_sha256: str
    metrics: dict[str, Any]
    limits: dict[str, Any]


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
