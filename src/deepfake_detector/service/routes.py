"""The HTTP API: predict one image or a batch, describe the model, liveness and readiness."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from deepfake_detector.inference.detector import Detector
from deepfake_detector.modelcard import detects_line, model_card_text
from deepfake_detector.service.limits import ServiceLimits
from deepfake_detector.service.pool import InferencePool, InferenceTimeout, QueueFull
from deepfake_detector.service.schemas import (
    BATCH_UPLOAD_BODY,
    ERROR_RESPONSES,
    SINGLE_UPLOAD_BODY,
    BatchOut,
    ModelOut,
    PredictionOut,
)
from deepfake_detector.service.scoring import FacesMode, ScoredUpload, Scorer
from deepfake_detector.service.uploads import Upload, UploadError, read_uploads

router = APIRouter()

FACES_HELP = (
    "auto: detect faces except in images that already are face crops (square-ish, <= 512 px); "
    "always: detect faces in every image; never: score the whole image"
)
HEATMAP_HELP = "add a Grad-CAM overlay (base64 PNG) to each face"
THRESHOLD_QUERY = Query(
    None, ge=0.0, le=1.0, description="decide with this threshold on P(fake) instead of the model's own"
)
BAND_QUERY = Query(
    None,
    ge=0.0,
    lt=0.5,
    description="half-width of the uncertain band around the threshold (model's own: 0.05)",
)


@dataclass
class ServiceState:
    """What the app shares between requests once the model is loaded."""

    detector: Detector
    scorer: Scorer
    pool: InferencePool
    limits: ServiceLimits


def service_of(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if state is None:
        raise HTTPException(503, "model not loaded yet", headers={"Retry-After": "5"})
    return state


@router.get("/healthz", tags=["health"], summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], summary="Readiness: the model is loaded and requests are accepted")
async def readyz(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "service", None)
    if state is None:
        return JSONResponse({"ready": False, "reason": "model not loaded"}, status_code=503)
    return JSONResponse(
        {
            "ready": True,
            "model": state.detector.spec.name,
            "engine": state.detector.engine_name,
            "in_flight": state.pool.in_flight,
            "queue_size": state.pool.capacity,
        }
    )


@router.get("/v1/model", response_model=ModelOut, tags=["model"], summary="The loaded model and the limits")
async def model_info(request: Request) -> dict[str, Any]:
    state = service_of(request)
    spec = state.detector.spec
    return {
        "name": spec.name,
        "version": spec.version,
        "architecture": spec.architecture,
        "engine": state.detector.engine_name,
        "threshold": round(float(spec.threshold), 6),
        "threshold_method": spec.threshold_method,
        "uncertain_band": float(spec.uncertain_band),
        "rule": spec.rule.describe(),
        "temperature": round(float(spec.temperature), 6),
        "input_size": int(spec.img_size),
        "class_names": list(spec.class_names),
        "crop": spec.crop_spec.to_dict(),
        "data_hash": spec.data_hash,
        "trained_on": list(spec.trained_on),
        "weights_sha256": spec.weights_sha256,
        "metrics": dict(spec.metrics),
        "limits": state.limits.public(),
        "detects": detects_line(spec),
        "model_card": model_card_text(state.detector.folder, spec),
    }


@router.post(
    "/v1/predict",
    response_model=PredictionOut,
    responses=ERROR_RESPONSES,
    openapi_extra=SINGLE_UPLOAD_BODY,
    tags=["predict"],
    summary="Real or fake: one image (multipart field 'file', or the raw image as the body)",
    description=(
        "Send the image as the multipart field `file`, or as the raw body with an `image/*` or "
        "`application/octet-stream` content type (an optional `X-Filename` header names it in the answer). "
        "Nothing is stored; the file name is only a label."
    ),
)
async def predict(
    request: Request,
    heatmap: bool = Query(False, description=HEATMAP_HELP),
    faces: Literal["auto", "always", "never"] = Query("auto", description=FACES_HELP),
    threshold: float | None = THRESHOLD_QUERY,
    uncertain_band: float | None = BAND_QUERY,
) -> dict[str, Any]:
    state = service_of(request)
    started = time.perf_counter()
    uploads = await _read(request, state, field="file", max_files=1, allow_raw=True)
    upload = uploads[0]
    if upload.error:
        raise HTTPException(upload.status, f"{upload.filename}: {upload.error}")
    (scored,), queue_ms = await _score(state, uploads, faces, heatmap, (threshold, uncertain_band))
    if scored.error:
        raise HTTPException(scored.status, f"{scored.filename}: {scored.error}")
    body = scored.to_response()
    body["timing_ms"].update(queue=round(queue_ms, 2), total=round((time.perf_counter() - started) * 1000, 2))
    request.state.log_fields = {"files": 1, "label": body["label"], "prob_fake": body["prob_fake"]}
    return body


@router.post(
    "/v1/predict/batch",
    response_model=BatchOut,
    responses=ERROR_RESPONSES,
    openapi_extra=BATCH_UPLOAD_BODY,
    tags=["predict"],
    summary="Real or fake: several images (multipart field 'files', repeated); errors are per file",
)
async def predict_batch(
    request: Request,
    heatmap: bool = Query(False, description=HEATMAP_HELP),
    faces: Literal["auto", "always", "never"] = Query("auto", description=FACES_HELP),
    threshold: float | None = THRESHOLD_QUERY,
    uncertain_band: float | None = BAND_QUERY,
) -> dict[str, Any]:
    state = service_of(request)
    started = time.perf_counter()
    uploads = await _read(
        request, state, field="files", max_files=state.limits.max_batch_files, allow_raw=False
    )
    scored, queue_ms = await _score(state, uploads, faces, heatmap, (threshold, uncertain_band))
    results = [
        {
            "path": item.filename,
            "status": item.status,
            "error": f"{item.filename}: {item.error}" if item.error else None,
            "result": None if item.error else item.to_response(),
        }
        for item in scored
    ]
    errors = sum(1 for item in scored if item.error)
    request.state.log_fields = {"files": len(scored), "file_errors": errors}
    return {
        "count": len(results),
        "errors": errors,
        "results": results,
        "timing_ms": {"queue": round(queue_ms, 2), "total": round((time.perf_counter() - started) * 1000, 2)},
    }


async def _read(
    request: Request, state: ServiceState, *, field: str, max_files: int, allow_raw: bool
) -> list[Upload]:
    try:
        return await read_uploads(
            request,
            field=field,
            max_files=max_files,
            max_file_bytes=state.limits.max_upload_bytes,
            allow_raw=allow_raw,
        )
    except UploadError as exc:
        raise HTTPException(exc.status, exc.detail) from exc


async def _score(
    state: ServiceState,
    uploads: list[Upload],
    faces: FacesMode,
    heatmap: bool,
    rule: tuple[float | None, float | None] = (None, None),
) -> tuple[list[ScoredUpload], float]:
    """Score on the inference pool; returns the results and the ms spent waiting for a thread.
    `rule`: a request's own (threshold, uncertain band); None keeps the model's."""
    submitted = time.perf_counter()
    spec = state.detector.spec
    judge = None if rule == (None, None) else spec.with_rule(*rule).rule

    def job() -> tuple[list[ScoredUpload], float]:
        waited_ms = (time.perf_counter() - submitted) * 1000.0
        scored = state.scorer.score(uploads, faces, heatmap)
        for item in scored:
            if judge is not None and item.prediction is not None:
                item.prediction = item.prediction.with_rule(judge)
        return scored, waited_ms

    try:
        return await state.pool.run(job)
    except QueueFull as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except InferenceTimeout as exc:
        raise HTTPException(504, str(exc)) from exc
