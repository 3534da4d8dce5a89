"""Scoring uploaded image bytes: decode, find faces, score, and (on request) explain with Grad-CAM.

Uploads go through the same pipeline as `Detector.predict` (inference/pipeline.py: `prepare` cuts
the regions by the model's crop spec, `score_prepared` scores them), so the service and
`deepfake-detector predict` give the same probability for the same file. Runs on the inference
pool's threads.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfake_detector.data.crop import FacesMode
from deepfake_detector.data.faces import detect_faces
from deepfake_detector.data.images import ImageInfo, UnreadableImage, read_image_info
from deepfake_detector.inference.detector import Detector
from deepfake_detector.inference.pipeline import Item, Prepared, prepare, score_prepared
from deepfake_detector.inference.results import Prediction
from deepfake_detector.inference.video.frames import looks_like_video
from deepfake_detector.service.uploads import Upload

ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


@dataclass
class ScoredUpload:
    """What became of one upload: a prediction, or an HTTP status and the reason it was refused."""

    filename: str
    status: int = 200
    error: str = ""
    prediction: Prediction | None = None
    info: ImageInfo | None = None
    heatmaps: list[str | None] = field(default_factory=list)  # base64 PNG per face
    heatmap_error: str = ""
    timing_ms: dict[str, float] = field(default_factory=dict)
    prepared: Prepared | None = None  # decoded regions, dropped once scored

    def to_response(self) -> dict[str, Any]:
        """The JSON body for a scored image (the shape of `schemas.PredictionOut`)."""
        assert self.prediction is not None and self.info is not None
        data = self.prediction.to_dict()  # the same fields as predict's JSON rows
        data["path"] = self.filename
        heatmaps = self.heatmaps or [None] * len(data["faces"])
        data["faces"] = [
            {**{k: v for k, v in face.items() if k != "heatmap"}, "heatmap_png": heat}
            for face, heat in zip(data["faces"], heatmaps, strict=True)
        ]
        width, height = self.info.width, self.info.height
        if self.info.orientation in ROTATED_ORIENTATIONS:
            width, height = height, width
        return {
            **data,
            "image": {"width": width, "height": height, "format": self.info.format},
            "heatmap_error": self.heatmap_error or None,
            "timing_ms": {k: round(v, 2) for k, v in self.timing_ms.items()},
        }


class Scorer:
    """Scores in-memory uploads with a loaded Detector; safe to call from several threads."""

    def __init__(self, detector: Detector, max_pixels: int):
        self.detector = detector
        self.max_pixels = max_pixels
        self._grad_cam: Any = None
        self._cam_lock = threading.Lock()  # Grad-CAM hooks keep per-call state: one explanation at a time

    def warm_up(self) -> None:
        """Run the model and the face finder once so the first request does not pay their start-up."""
        size = self.detector.spec.img_size
        self.detector.prob_fake([np.zeros((size, size, 3), dtype=np.uint8)])
        detect_faces(np.zeros((64, 64, 3), dtype=np.uint8))

    def prepare_explainer(self) -> None:
        """Build the Grad-CAM explainer now (importing it takes seconds) instead of in the first
        ?heatmap=true request; meant for a background thread. Without PyTorch it stays unbuilt and
        heatmap requests report why."""
        try:
            self._explainer()
        except Exception:
            return

    def _explainer(self) -> Any:
        with self._cam_lock:
            if self._grad_cam is None:
                from deepfake_detector.inference.heatmap import GradCam

                self._grad_cam = GradCam(self.detector.torch_model())
            return self._grad_cam

    def score(
        self, uploads: list[Upload], faces: FacesMode = "auto", heatmap: bool = False
    ) -> list[ScoredUpload]:
        """One ScoredUpload per upload, in order; all faces of all images scored in one batch
        through the same pipeline as `Detector.predict` (inference/pipeline.py)."""
        scored = [self._decode(upload, faces) for upload in uploads]
        usable = [item for item in scored if not item.error]
        started = time.perf_counter()
        spec = self.detector.spec
        predictions = score_prepared(self.detector.engine, spec, [item.prepared for item in usable])
        inference_ms = (time.perf_counter() - started) * 1000.0
        for item, prediction in zip(usable, predictions, strict=True):
            prediction.path = item.filename
            item.prediction = prediction
            item.timing_ms["inference"] = inference_ms
            if heatmap:
                self._explain(item)
            item.prepared = None  # the pixels are not needed past this point
        return scored

    def _decode(self, upload: Upload, faces: FacesMode) -> ScoredUpload:
        item = ScoredUpload(upload.filename, status=upload.status, error=upload.error)
        if upload.error:
            return item
        if looks_like_video(upload.content_type, upload.data[:64]):
            item.status, item.error = 415, "this is a video: send videos to /v1/predict/video"
            return item
        started = time.perf_counter()
        try:
            item.info = read_image_info(upload.data, max_pixels=self.max_pixels)
        except UnreadableImage as exc:
            item.status, item.error = 422, exc.reason
            return item
        except Exception as exc:  # one hostile or odd file must never take the server down
            item.status, item.error = 422, f"cannot process ({type(exc).__name__}: {exc})"
            return item
        source = Item(upload.filename, "image", upload.data)
        item.prepared = prepare(source, self.detector.spec, faces, max_pixels=self.max_pixels)
        if item.prepared.error:
            item.status, item.error = 422, item.prepared.error
        item.timing_ms["decode"] = (time.perf_counter() - started) * 1000.0  # decoding and face finding
        return item

    def explain_batch(self, batch: np.ndarray, fake: list[bool]) -> np.ndarray:
        """Grad-CAM maps for preprocessed faces (one explanation at a time; needs PyTorch)."""
        explainer = self._explainer()
        with self._cam_lock:
            return explainer(batch, fake)

    def _explain(self, item: ScoredUpload) -> None:
        """Base64 Grad-CAM overlays, one per face (needs PyTorch); a failure is reported, not raised."""
        assert item.prediction is not None and item.prepared is not None
        crops = item.prepared.regions.crops
        if not crops:
            return
        started = time.perf_counter()
        try:
            from deepfake_detector.inference.heatmap import overlay
            from deepfake_detector.spec import preprocess_batch

            fake = [face.label == "fake" for face in item.prediction.faces]
            explainer = self._explainer()
            with self._cam_lock:
                cams = explainer(preprocess_batch(crops, self.detector.spec), fake)
            item.heatmaps = [_png_base64(overlay(crop, cam)) for crop, cam in zip(crops, cams, strict=True)]
        except Exception as exc:
            item.heatmap_error = f"heatmap unavailable ({exc})"
        item.timing_ms["heatmap"] = (time.perf_counter() - started) * 1000.0


def _png_base64(rgb: np.ndarray) -> str:
    import cv2

    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("cannot encode the heatmap as PNG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")
