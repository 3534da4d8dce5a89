"""POST /v1/predict/video: one short video in, one verdict with tracks, timeline and pictures out.

The upload is capped by size (`max_video_mb`, 413, before the body is read) and by duration
(`max_video_s`, 422, read from the header or counted); the frames are scored on the inference
pool exactly like `deepfake-detector predict clip.mp4` (inference/video/scoring.py). OpenCV's
FFmpeg reader needs a file, so the upload is written to a private temporary file (mode 0600)
that is deleted as soon as the video is scored.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from deepfake_detector.inference.results import ROW_FIELDS
from deepfake_detector.inference.video.frames import UnreadableVideo, video_file
from deepfake_detector.inference.video.scoring import VideoOptions, VideoScore, score_video
from deepfake_detector.service.limits import VIDEO_PATH
from deepfake_detector.service.pool import InferenceTimeout, QueueFull
from deepfake_detector.service.routes import FACES_HELP, ServiceState, service_of
from deepfake_detector.service.schemas import ERROR_RESPONSES, VerdictOut, upload_body
from deepfake_detector.service.uploads import Upload, UploadError, read_uploads

router = APIRouter()
# First bytes of the image formats /v1/predict reads: such an upload here is sent there instead.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


class VideoInfoOut(BaseModel):
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    codec: str


class TrackOut(BaseModel):
    id: int
    face_count: int = Field(description="sampled frames in which this face was found")
    first_s: float
    last_s: float
    prob_mean: float = Field(description="mean probability of fake over the track's faces")
    prob_confident: float = Field(
        description="mean of the top quarter of scores if they all look fake, else of the bottom quarter"
    )
    prob_fake: float = Field(description="the aggregate the verdict uses (see `aggregate`)")
    label: str
    decides: bool = Field(description="long enough (3+ faces) to decide the video's verdict")


class FaceScoreOut(BaseModel):
    frame: int
    time_s: float
    track: int
    box: list[int]
    prob_fake: float


class TimelineFaceOut(BaseModel):
    track: int
    prob_fake: float


class TimelinePointOut(BaseModel):
    frame: int
    time_s: float
    prob_fake: float | None = Field(description="highest probability of fake in the frame; null: no face")
    faces: list[TimelineFaceOut]


class VideoPredictionOut(VerdictOut):
    """The verdict fields of an image's answer (`faces`: one per face track), then the video's details."""

    video: VideoInfoOut
    sampling: dict[str, Any]
    sampled_frames: int
    frames_with_faces: int
    aggregate: str
    deciding_track: int | None
    pooled: bool = Field(description="true when no track was long enough and all faces were pooled")
    tracks: list[TrackOut]
    frames: list[FaceScoreOut] = Field(description="the faces that drove the verdict (on the contact sheet)")
    timeline: list[TimelinePointOut]
    contact_sheet_png: str = Field(
        description="base64 PNG of the key frames (with Grad-CAM when ?heatmap=true)"
    )
    timeline_png: str = Field(description="base64 PNG plot of the probability of fake over time")
    heatmap_error: str | None = None
    warning: str | None = None
    timing_ms: dict[str, float]


VIDEO_UPLOAD_BODY: dict[str, Any] = upload_body("video/*")


@router.post(
    VIDEO_PATH,
    response_model=VideoPredictionOut,
    responses=ERROR_RESPONSES,
    openapi_extra=VIDEO_UPLOAD_BODY,
    tags=["predict"],
    summary="Real or fake: one short video (multipart field 'file', or the raw video as the body)",
    description=(
        "Frames are sampled uniformly, faces found and tracked, each face scored; the verdict comes "
        "from the most suspicious track. Limits: see `limits.max_video_mb` and `limits.max_video_s` "
        "in GET /v1/model (413 for a larger upload, 422 for a longer or unreadable video)."
    ),
)
async def predict_video(
    request: Request,
    frames: int | None = Query(None, ge=1, description="frames to sample (default: limits.video_frames)"),
    aggregate: Literal["confident", "mean"] = Query("confident", description="per-track aggregate"),
    faces: Literal["auto", "always", "never"] = Query("auto", description=FACES_HELP),
    heatmap: bool = Query(False, description="Grad-CAM overlays on the contact sheet"),
) -> dict[str, Any]:
    state = service_of(request)
    limits = state.limits
    wanted = frames or limits.video_frames
    if wanted > limits.max_video_frames:
        raise HTTPException(422, f"frames={wanted} is over the limit of {limits.max_video_frames}")
    started = time.perf_counter()
    try:
        (upload,) = await read_uploads(
            request,
            field="file",
            max_files=1,
            max_file_bytes=limits.max_video_bytes,
            allow_raw=True,
            what="video",
        )
    except UploadError as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    if upload.error:
        raise HTTPException(upload.status, f"{upload.filename}: {upload.error}")
    if not upload.data:
        raise HTTPException(422, f"{upload.filename}: empty file (0 bytes)")
    if _is_image(upload.data[:16]):
        raise HTTPException(415, f"{upload.filename}: this is an image: send images to /v1/predict")
    options = VideoOptions(
        frames=wanted,
        aggregate=aggregate,
        max_seconds=limits.max_video_s,
        max_pixels=limits.max_pixels,
        render=True,
    )
    submitted = time.perf_counter()

    def job() -> tuple[dict[str, Any], float]:
        waited_ms = (time.perf_counter() - submitted) * 1000.0
        return _score(state, upload, options, faces, heatmap), waited_ms

    try:
        body, queue_ms = await state.pool.run(job)
    except QueueFull as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except InferenceTimeout as exc:
        raise HTTPException(504, str(exc)) from exc
    if body.get("error"):
        raise HTTPException(422, f"{upload.filename}: {body['error']}")
    body["timing_ms"].update(queue=round(queue_ms, 2), total=round((time.perf_counter() - started) * 1000, 2))
    request.state.log_fields = {
        "files": 1,
        "video": True,
        "label": body["label"],
        "prob_fake": body["prob_fake"],
    }
    return body


class _Explainer:
    """The scorer's Grad-CAM as video scoring expects it; a failure (no PyTorch) is kept, not raised."""

    def __init__(self, state: ServiceState):
        self.state = state
        self.error = ""

    def __call__(self, batch: np.ndarray, fake: list[bool]) -> np.ndarray | None:
        try:
            return self.state.scorer.explain_batch(batch, fake)
        except Exception as exc:
            self.error = f"heatmap unavailable ({exc})"
            return None


def _score(
    state: ServiceState, upload: Upload, options: VideoOptions, faces: str, heatmap: bool
) -> dict[str, Any]:
    """Runs on a pool thread: the response body, or {"error": reason} for an unreadable or refused video."""
    explainer = _Explainer(state) if heatmap else None
    started = time.perf_counter()
    suffix = Path(upload.filename).suffix.lower()
    try:
        with video_file(upload.data, suffix=suffix if 1 < len(suffix) <= 6 else ".video") as path:
            scored = score_video(
                state.detector,
                path,
                name=upload.filename,
                options=options,
                faces=faces,  # type: ignore[arg-type]
                batch_size=64,
                workers=1,  # the pool's threads are the service's cores
                grad_cam=explainer,
            )
    except UnreadableVideo as exc:
        return {"error": exc.reason}
    except Exception as exc:  # one hostile or odd file must never take the server down
        return {"error": f"cannot process ({type(exc).__name__}: {exc})"}
    return _body(scored, explainer, (time.perf_counter() - started) * 1000.0)


def _body(scored: VideoScore, explainer: _Explainer | None, elapsed_ms: float) -> dict[str, Any]:
    data = scored.prediction.to_dict()
    video = data["video"]
    return {
        **{key: data[key] for key in ROW_FIELDS},
        "video": {key: video[key] for key in VideoInfoOut.model_fields},
        **{
            key: video[key]
            for key in (
                "sampling",
                "sampled_frames",
                "frames_with_faces",
                "aggregate",
                "deciding_track",
                "pooled",
                "tracks",
                "frames",
                "timeline",
            )
        },
        "contact_sheet_png": _b64(scored.contact_sheet_png),
        "timeline_png": _b64(scored.timeline_png),
        "heatmap_error": (explainer.error or None) if explainer is not None else None,
        "warning": video["warning"] or None,
        "timing_ms": {"video": round(elapsed_ms, 2)},
    }


def _is_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data or b"").decode("ascii")
