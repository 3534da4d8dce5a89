"""`Detector`: a trained model ready to score images, files and whole folders.

    detector = Detector.load("runs/mobilenet")       # ONNX Runtime when model.onnx is there
    detector.predict(["photo.jpg", "crops/"])        # -> list[Prediction]
    detector.predict_proba([rgb_uint8_array])        # -> probability of fake per image

Nothing on the ONNX path imports torch, so a slim install can serve an exported model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from deepfake_detector.data.images import UnreadableImage, load_image, read_image_info, resize_image
from deepfake_detector.inference.batching import batched, iter_mapped
from deepfake_detector.inference.engines import (
    Engine,
    ModelMismatch,
    OnnxEngine,
    TorchEngine,
    gpu_visible,
    torch_available,
)
from deepfake_detector.inference.results import FaceResult, Prediction, label_for
from deepfake_detector.inference.video import is_video_path
from deepfake_detector.locate import ModelNotFound, model_dir
from deepfake_detector.spec import ModelSpec, preprocess_batch

if TYPE_CHECKING:
    from deepfake_detector.inference.video_scoring import VideoOptions

EngineName = Literal["auto", "torch", "onnx"]
FacesMode = Literal["auto", "always", "never"]
ONNX_FILES = ("model.onnx", "model.int8.onnx")  # looked for beside model.json, in this order
SPEC_FILE = "model.json"
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class _Regions:
    """What a decode worker hands the scorer for one input: the crops to score and where they came from."""

    path: str
    crops: list[np.ndarray] = field(default_factory=list)  # each img_size x img_size x 3 uint8
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    note: str = ""
    error: str = ""
    image: np.ndarray | None = None  # the decoded photo, kept only for heatmap pages


class Detector:
    """A model plus the engine that runs it (PyTorch or ONNX Runtime) and the spec that interprets it."""

    def __init__(self, engine: Engine, spec: ModelSpec, folder: Path | None = None):
        self.engine = engine
        self.spec = spec
        self.folder = folder
        self._torch_model: Any = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        model: str | Path = "default",
        *,
        engine: EngineName = "auto",
        threads: int | None = None,
        device: str = "cpu",
    ) -> Detector:
        """Load `default`, a run folder, or its model.json / model.safetensors / .onnx file.

        engine="auto" runs ONNX Runtime when an exported model sits beside model.json (`model.onnx`,
        else `model.int8.onnx`) or an .onnx file was given, or when torch is not installed, and
        PyTorch otherwise. device="cuda" (or "auto" with a GPU present) runs PyTorch on the GPU.
        """
        if engine not in ("auto", "torch", "onnx"):
            raise ValueError(f"engine must be auto, torch or onnx, got {engine!r}")
        if device != "cpu" and (device != "auto" or gpu_visible()):
            if engine == "onnx":
                raise ValueError(f"--device {device} runs PyTorch; the ONNX engine here is CPU-only")
            engine = "torch"
        ref = Path(str(model))
        folder = model_dir(model)
        spec = ModelSpec.load(folder / SPEC_FILE)
        onnx_path = ref if ref.suffix == ".onnx" and ref.is_file() else _exported_file(folder)
        has_torch = torch_available()
        if engine == "torch" or (engine == "auto" and not onnx_path.is_file() and has_torch):
            if not has_torch:
                raise ModelNotFound(
                    f"{folder}: engine 'torch' needs PyTorch (the train extra of deepfake-detector)"
                )
            return cls(TorchEngine.load(folder, threads=threads, device=device), spec, folder)
        if not onnx_path.is_file():
            raise ModelNotFound(
                f"{onnx_path}: no exported model and PyTorch is not installed; run "
                f"`deepfake-detector export {folder}` where PyTorch is, or install PyTorch (the train extra)"
            )
        try:
            return cls(OnnxEngine(onnx_path, spec, threads=threads), spec, folder)
        except ModelMismatch as exc:
            if engine == "onnx" or not has_torch:
                raise
            warnings.warn(f"{exc}; using PyTorch instead", stacklevel=2)
            return cls(TorchEngine.load(folder, threads=threads), spec, folder)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    # ------------------------------------------------------------------ arrays
    def predict_logits(self, images: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Raw fake-logits for RGB uint8 HxWx3 arrays of any size (resized to the model's input size)."""
        size = self.spec.img_size
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = [resize_image(np.asarray(img), size) for img in images[start : start + batch_size]]
            out.append(self.engine.logits(preprocess_batch(chunk, self.spec)))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def predict_proba(self, images: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Calibrated probability of fake for each RGB uint8 array."""
        return self.spec.probability(self.predict_logits(images, batch_size=batch_size))

    # ------------------------------------------------------------------ files
    def predict(
        self,
        inputs: Iterable[str | Path],
        *,
        faces: FacesMode = "auto",
        batch_size: int = 64,
        workers: int = 2,
        heatmap_dir: str | Path | None = None,
        progress: bool = False,
        video: VideoOptions | None = None,
    ) -> list[Prediction]:
        """Score image and video files; one Prediction per input, in input order, errors included as rows.

        faces="never" scores each whole image; "always" detects faces and scores each crop;
        "auto" treats small square-ish images as face crops already (see faces.looks_like_face_crop)
        and detects faces in everything else. With heatmap_dir, Grad-CAM overlays per face and an
        index.html page are written there (needs PyTorch).

        A video (mp4, mov, avi, webm, mkv) gives one VideoPrediction: frames sampled as `video`
        says (default 32, uniformly), faces tracked, one verdict (see inference/video_scoring.py);
        its contact sheet and timeline PNGs go to video.out_dir, else heatmap_dir, when set.
        """
        inputs = list(inputs)
        results: list[Prediction] = []
        bar = _progress_bar(len(inputs)) if progress else None
        for chunk in self.iter_predict(
            inputs, faces=faces, batch_size=batch_size, workers=workers, heatmap_dir=heatmap_dir, video=video
        ):
            results.extend(chunk)
            if bar is not None:
                bar(len(chunk))
        if bar is not None:
            bar(0, done=True)
        return results

    def iter_predict(
        self,
        inputs: Iterable[str | Path],
        *,
        faces: FacesMode = "auto",
        batch_size: int = 64,
        workers: int = 2,
        heatmap_dir: str | Path | None = None,
        video: VideoOptions | None = None,
    ) -> Iterator[list[Prediction]]:
        """Like `predict`, yielding the predictions batch by batch (to write and flush as they come)."""
        if faces not in ("auto", "always", "never"):
            raise ValueError(f"faces must be auto, always or never, got {faces!r}")
        keep_images = heatmap_dir is not None
        explainer = None
        if heatmap_dir is not None:
            from deepfake_detector.inference.heatmap import HeatmapWriter

            explainer = HeatmapWriter(self.torch_model(), self.spec, heatmap_dir)
        prepare = self._region_maker(faces, keep_images)
        try:
            for is_video, group in groupby(inputs, key=is_video_path):
                if is_video:  # one row per video, scored frame by frame
                    yield from self._iter_videos(
                        group, video, faces, batch_size, workers, explainer, heatmap_dir
                    )
                    continue
                items = iter_mapped(group, prepare, workers=workers)
                for batch in batched((regions for _, regions in items), batch_size):
                    predictions = self._score(batch, batch_size)  # type: ignore[arg-type]
                    if explainer is not None:
                        explainer.add(batch, predictions)  # type: ignore[arg-type]
                    yield predictions
        finally:
            if explainer is not None:
                explainer.write_index()

    def _iter_videos(
        self,
        paths: Iterable[str | Path],
        video: VideoOptions | None,
        faces: FacesMode,
        batch_size: int,
        workers: int,
        explainer: Any,
        heatmap_dir: str | Path | None,
    ) -> Iterator[list[Prediction]]:
        from dataclasses import replace

        from deepfake_detector.inference.video_scoring import VideoOptions, predict_video_file

        options = video or VideoOptions()
        if options.out_dir is None and heatmap_dir is not None:
            options = replace(options, out_dir=heatmap_dir)
        options = replace(options, render=options.out_dir is not None)  # pictures only where they are kept
        grad_cam = explainer.grad_cam if explainer is not None else None
        for path in paths:
            yield [
                predict_video_file(
                    self,
                    path,
                    options=options,
                    faces=faces,
                    batch_size=batch_size,
                    workers=workers,
                    grad_cam=grad_cam,
                )
            ]

    def _region_maker(self, faces: FacesMode, keep_images: bool) -> Callable[[str | Path], _Regions]:
        size = self.spec.img_size
        margin = float(self.spec.face_margin)

        def prepare(source: str | Path) -> _Regions:
            path = str(source)
            try:
                return _prepare(path, size, margin, faces, keep_images)
            except UnreadableImage as exc:
                return _Regions(path, error=exc.reason)
            except Exception as exc:  # one odd file must never stop a run over thousands
                return _Regions(path, error=f"cannot process ({type(exc).__name__}: {exc})")

        return prepare

    def _score(self, batch: list[_Regions], batch_size: int) -> list[Prediction]:
        crops = [crop for regions in batch for crop in regions.crops]
        probs = np.zeros(0)
        if crops:
            logits = np.concatenate(
                [
                    self.engine.logits(preprocess_batch(crops[i : i + batch_size], self.spec))
                    for i in range(0, len(crops), batch_size)
                ]
            )
            probs = self.spec.probability(logits)
        threshold = float(self.spec.threshold)
        out: list[Prediction] = []
        cursor = 0
        for regions in batch:
            face_probs = probs[cursor : cursor + len(regions.crops)]
            cursor += len(regions.crops)
            face_results = [
                FaceResult(box=box, prob_fake=float(p), label=label_for(float(p), threshold))
                for box, p in zip(regions.boxes, face_probs, strict=True)
            ]
            if face_results:
                top = max(face.prob_fake for face in face_results)
                label = label_for(top, threshold)
                out.append(Prediction(regions.path, label, top, threshold, face_results, note=regions.note))
            else:
                out.append(Prediction(regions.path, "", None, threshold, [], regions.error, regions.note))
        return out

    # ------------------------------------------------------------------ torch-only extras
    def torch_model(self) -> Any:
        """The PyTorch network (for Grad-CAM), loaded from the bundle when the engine is ONNX."""
        if isinstance(self.engine, TorchEngine):
            return self.engine.model
        if self._torch_model is None:
            if self.folder is None or not torch_available():
                raise RuntimeError("heatmaps need PyTorch (the train extra) and the model.safetensors bundle")
            from deepfake_detector.models import load_bundle

            self._torch_model, _ = load_bundle(self.folder)
        return self._torch_model

    def evaluate(
        self,
        datasets: Sequence[str | Path],
        out_dir: str | Path,
        split: str | None = None,
        robustness: bool = False,
        **options: Any,
    ) -> dict[str, dict[str, Any]]:
        """Metrics, plots and report.html for each dataset (see evaluation.evaluate_datasets)."""
        from deepfake_detector.evaluation import evaluate_datasets
        from deepfake_detector.inference.batching import iter_decoded

        options.setdefault("decode", iter_decoded)
        options.setdefault("model_ref", str(self.folder or ""))
        return evaluate_datasets(self, datasets, out_dir, split, robustness, **options)

    @classmethod
    def train(
        cls, data: str | Path, preset: str = "default", out: str | Path = "runs/latest", **options: Any
    ) -> Detector:
        """Train a preset on a dataset (see training.train) and return the trained model as a Detector."""
        from deepfake_detector.training import train

        result = train(str(data), preset=preset, out=out, **options)
        return cls.load(result.run_dir)

    def export(
        self,
        out_path: str | Path | None = None,
        format: str = "onnx",
        int8: bool = False,
        calibration_images: Sequence[str | Path] | str | Path | None = None,
    ) -> Path:
        """Export to ONNX (model.onnx beside model.json by default); int8 also writes model.int8.onnx.

        Returns the path of the file written last (the int8 model when int8=True).
        """
        if format != "onnx":
            raise ValueError(f"unsupported export format {format!r} (only onnx)")
        if self.folder is None:
            raise ValueError("this detector has no model folder to export from")
        from deepfake_detector.inference.export import export_onnx, quantize_int8

        fp32 = export_onnx(self.folder, out_path)
        if not int8:
            return fp32
        report = quantize_int8(fp32, self.spec, calibration_images, model_folder=self.folder)
        return report.path


def _exported_file(folder: Path) -> Path:
    for name in ONNX_FILES:
        if (folder / name).is_file():
            return folder / name
    return folder / ONNX_FILES[0]


def _prepare(path: str, size: int, margin: float, faces: FacesMode, keep_images: bool) -> _Regions:
    """Decode one file and cut the regions to score (runs in a worker thread)."""
    from deepfake_detector.inference import faces as face_finder

    info = read_image_info(path)
    width, height = info.width, info.height
    if info.orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    whole_box = (0, 0, width, height)
    if faces == "never" or (faces == "auto" and face_finder.looks_like_face_crop(width, height)):
        # Decoded straight at the model's size (DCT-scaled for JPEGs), exactly as the training loader does.
        crop = load_image(path, size=size)
        note = "whole image" if faces == "never" else "face crop (detection skipped)"
        return _Regions(path, [crop], [whole_box], note, image=load_image(path) if keep_images else None)
    image = load_image(path)
    boxes = face_finder.detect_faces(image)
    if not boxes:
        return _Regions(path, note="no face found", image=image if keep_images else None)
    crops = [face_finder.crop_face(image, box, margin, size) for box in boxes]
    note = f"{len(boxes)} faces detected" if len(boxes) > 1 else "1 face detected"
    return _Regions(path, crops, boxes, note, image=image if keep_images else None)


def _progress_bar(total: int) -> Callable[..., None]:
    from deepfake_detector.inference.progress import make_progress

    return make_progress(total)
