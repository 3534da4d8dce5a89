"""Scoring uploaded image bytes: decode, find faces, score, and (on request) explain with Grad-CAM.

`Detector.predict` takes file paths and uploads live only in memory, so this applies the same
per-image policy to bytes with the Detector's public pieces: `read_image_info`/`load_image` on
bytes, `faces.looks_like_face_crop`/`detect_faces`/`crop_face`, `Detector.predict_proba`, and the
heatmap module. A face crop is decoded straight at the model's input size exactly as on the CLI
path, so the service and `deepfake-detector predict` give the same probability for the same file.
Runs on the inference pool's threads.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from deepfake_detector.data.images import ImageInfo, UnreadableImage, load_image, read_image_info
from deepfake_detector.inference import faces as face_finder
from deepfake_detector.inference.detector import Detector
from deepfake_detector.inference.results import FaceResult, Prediction, label_for
from deepfake_detector.inference.video import looks_like_video
from deepfake_detector.service.uploads import Upload

FacesMode = Literal["auto", "always", "never"]
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
    crops: list[np.ndarray] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    note: str = ""

    def to_response(self) -> dict[str, Any]:
        """The JSON body for a scored image (the shape of `schemas.PredictionOut`)."""
        assert self.prediction is not None and self.info is not None
        data = self.prediction.to_dict()
        faces = [
            {**face, "heatmap_png": heat}
            for face, heat in zip(data["boxes"], self.heatmaps or [None] * len(data["boxes"]), strict=True)
        ]
        for face in faces:
            face.pop("heatmap", None)
        width, height = self.info.width, self.info.height
        if self.info.orientation in ROTATED_ORIENTATIONS:
            width, height = height, width
        return {
            "filename": self.filename,
            "label": data["label"],
            "prob_fake": data["prob_fake"],
            "confidence": data["confidence"],
            "threshold": data["threshold"],
            "note": data["note"],
            "faces": faces,
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
        self.detector.predict_proba([np.zeros((size, size, 3), dtype=np.uint8)])
        face_finder.detect_faces(np.zeros((64, 64, 3), dtype=np.uint8))

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
        """One ScoredUpload per upload, in order; all faces of all images scored in one batch."""
        scored = [self._decode(upload, faces) for upload in uploads]
        crops = [crop for item in scored for crop in item.crops]
        started = time.perf_counter()
        probs = self.detector.predict_proba(crops) if crops else np.zeros(0)
        inference_ms = (time.perf_counter() - started) * 1000.0
        threshold = float(self.detector.spec.threshold)
        cursor = 0
        for item in scored:
            if item.error:
                continue
            face_probs = [float(p) for p in probs[cursor : cursor + len(item.crops)]]
            cursor += len(item.crops)
            results = [
                FaceResult(box=box, prob_fake=p, label=label_for(p, threshold))
                for box, p in zip(item.boxes, face_probs, strict=True)
            ]
            top = max(face_probs) if face_probs else None
            label = label_for(top, threshold) if top is not None else ""
            item.prediction = Prediction(item.filename, label, top, threshold, results, note=item.note)
            item.timing_ms["inference"] = inference_ms
            if heatmap:
                self._explain(item)
            item.crops = []  # the pixels are not needed past this point
        return scored

    def _decode(self, upload: Upload, faces: FacesMode) -> ScoredUpload:
        item = ScoredUpload(upload.filename, status=upload.status, error=upload.error)
        if upload.error:
            return item
        if looks_like_video(upload.content_type, upload.data[:64]):
            item.status, item.error = 415, "this is a video: send videos to /v1/predict/video"
            return item
        size = self.detector.spec.img_size
        started = time.perf_counter()
        try:
            info = read_image_info(upload.data, max_pixels=self.max_pixels)
            item.info = info
            width, height = info.width, info.height
            if info.orientation in ROTATED_ORIENTATIONS:
                width, height = height, width
            if faces == "never" or (faces == "auto" and face_finder.looks_like_face_crop(width, height)):
                item.crops = [load_image(upload.data, size=size, max_pixels=self.max_pixels)]
                item.boxes = [(0, 0, width, height)]
                item.note = "whole image" if faces == "never" else "face crop (detection skipped)"
                item.timing_ms["decode"] = (time.perf_counter() - started) * 1000.0
                return item
            image = load_image(upload.data, max_pixels=self.max_pixels)
            decoded = time.perf_counter()
            item.timing_ms["decode"] = (decoded - started) * 1000.0
            item.boxes = face_finder.detect_faces(image)
            margin = float(self.detector.spec.face_margin)
            item.crops = [face_finder.crop_face(image, box, margin, size) for box in item.boxes]
            item.timing_ms["faces"] = (time.perf_counter() - decoded) * 1000.0
            count = len(item.boxes)
            item.note = "no face found" if not count else f"{count} face{'s' if count > 1 else ''} detected"
        except UnreadableImage as exc:
            item.status, item.error = 422, exc.reason
        except Exception as exc:  # one hostile or odd file must never take the server down
            item.status, item.error = 422, f"cannot process ({type(exc).__name__}: {exc})"
        return item

    def explain_batch(self, batch: np.ndarray, fake: list[bool]) -> np.ndarray:
        """Grad-CAM maps for preprocessed faces (one explanation at a time; needs PyTorch)."""
        explainer = self._explainer()
        with self._cam_lock:
            return explainer(batch, fake)

    def _explain(self, item: ScoredUpload) -> None:
        """Base64 Grad-CAM overlays, one per face (needs PyTorch); a failure is reported, not raised."""
        assert item.prediction is not None
        if not item.crops:
            return
        started = time.perf_counter()
        try:
            from deepfake_detector.inference.heatmap import overlay
            from deepfake_detector.spec import preprocess_batch

            fake = [face.label == "fake" for face in item.prediction.faces]
            explainer = self._explainer()
            with self._cam_lock:
                cams = explainer(preprocess_batch(item.crops, self.detector.spec), fake)
            item.heatmaps = [
                _png_base64(overlay(crop, cam)) for crop, cam in zip(item.crops, cams, strict=True)
            ]
        except Exception as exc:
            item.heatmap_error = f"heatmap unavailable ({exc})"
        item.timing_ms["heatmap"] = (time.perf_counter() - started) * 1000.0


def _png_base64(rgb: np.ndarray) -> str:
    import cv2

    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("cannot encode the heatmap as PNG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")
