"""`Detector`: a trained model ready to score images, files and whole folders.

    detector = Detector.load("runs/mobilenet")        # ONNX Runtime when model.onnx is there
    detector.predict(["photo.jpg", "crops/", jpeg_bytes, rgb_array, "clip.mp4"])  # -> list[Prediction]
    detector.predict_proba([rgb_array])               # -> (n, 2): P(real), P(fake), as classes_

Nothing on the ONNX path imports torch, so a slim install can serve an exported model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from deepfake_detector.data.crop import FACES_MODES, FacesMode
from deepfake_detector.data.images import resize_image
from deepfake_detector.inference.batching import batched, iter_mapped
from deepfake_detector.inference.engines import (
    Engine,
    ModelMismatch,
    OnnxEngine,
    TorchEngine,
    gpu_visible,
    torch_available,
)
from deepfake_detector.inference.observers import make_observers
from deepfake_detector.inference.pipeline import (
    Item,
    Prepared,
    as_rgb_array,
    expand_sources,
    is_pil_image,
    is_single_source,
    prepare,
    region_decoder,
    score_crops,
    score_prepared,
    split_back,
)
from deepfake_detector.inference.results import Prediction
from deepfake_detector.inference.video.scoring import iter_video_predictions
from deepfake_detector.locate import ModelNotFound, model_dir
from deepfake_detector.spec import ModelSpec

if TYPE_CHECKING:
    from deepfake_detector.inference.video.scoring import VideoOptions

EngineName = Literal["auto", "torch", "onnx"]
DEFAULT_BATCH_SIZE = 64
ONNX_FILES = ("model.onnx", "model.int8.onnx")  # looked for beside model.json, in this order
SPEC_FILE = "model.json"


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
        threshold: float | None = None,
        uncertain_band: float | None = None,
    ) -> Detector:
        """Load `default`, a run folder, its model.json / model.safetensors / .onnx file, or a model on
        the Hugging Face Hub, `hf://owner/name[@revision]` (downloaded into the HF cache, see hub.py).

        engine="auto" runs ONNX Runtime when an exported model sits beside model.json (`model.onnx`,
        else `model.int8.onnx`) or an .onnx file was given, or when torch is not installed, and
        PyTorch otherwise. device="cuda" (or "auto" with a GPU present) runs PyTorch on the GPU.
        `threshold` / `uncertain_band` replace the model's own (see `with_rule`).
        """
        detector = cls._load(model, engine=engine, threads=threads, device=device)
        return detector.with_rule(threshold, uncertain_band)

    def with_rule(self, threshold: float | None = None, uncertain_band: float | None = None) -> Detector:
        """The same model deciding with another threshold and/or uncertain band (verdict.py): labels
        change, probabilities do not. ValueError for a threshold outside [0, 1] or a band outside
        [0, 0.5)."""
        if threshold is None and uncertain_band is None:
            return self
        return Detector(self.engine, self.spec.with_rule(threshold, uncertain_band), self.folder)

    @classmethod
    def _load(cls, model: str | Path, *, engine: EngineName, threads: int | None, device: str) -> Detector:
        if engine not in ("auto", "torch", "onnx"):
            raise ValueError(f"engine must be auto, torch or onnx, got {engine!r}")
        if device != "cpu" and (device != "auto" or gpu_visible()):
            if engine == "onnx":
                raise ValueError(f"--device {device} runs PyTorch; the ONNX engine here is CPU-only")
            engine = "torch"
        ref = Path(str(model))
        folder = model_dir(model)
        spec = ModelSpec.load(folder / SPEC_FILE)
        if (folder / "head.json").is_file():  # frozen CLIP features + a head (+ a CNN): ONNX only
            from deepfake_detector.models.clip.fusion import load_clip_engine

            if engine == "torch":
                raise ValueError(
                    f"{folder}: a {spec.architecture} model runs on ONNX Runtime (engine auto or onnx)"
                )
            return cls(load_clip_engine(folder, spec, threads=threads), spec, folder)
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

    # ------------------------------------------------------------------ arrays (scikit-learn style)
    classes_ = np.array(["real", "fake"])

    def decision_function(
        self, images: Any, *, faces: FacesMode = "auto", batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Raw fake-logit per image (RGB arrays or PIL images), through the same face regions as
        `predict`: the most suspicious face's logit. Raises ValueError for an input that is not an
        image, or in which no face was found (faces="never" scores whole images)."""
        if isinstance(images, np.ndarray) and images.ndim == 4:  # a stacked batch
            images = list(images)
        elif images is None or is_single_source(images):
            images = [images]
        items = []
        for index, image in enumerate(images):
            if not isinstance(image, np.ndarray) and not is_pil_image(image):
                raise ValueError(
                    f"image {index}: predict_proba takes decoded RGB arrays or PIL images, got "
                    f"{type(image).__name__}; use predict() for files and bytes"
                )
            items += expand_sources(image)
        prepared = [prepare(item, self.spec, faces) for item in items]
        for index, one in enumerate(prepared):
            if one.error or not one.regions.crops:
                raise ValueError(f"image {index}: {one.error or one.regions.note}")
        logits = score_crops(
            self.engine, self.spec, [c for p in prepared for c in p.regions.crops], batch_size
        )
        counts = [len(p.regions.crops) for p in prepared]
        return np.array([part.max() for part in split_back(logits, counts)], dtype=np.float32)

    def predict_proba(
        self, images: Any, *, faces: FacesMode = "auto", batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """(n, 2) probabilities in the order of `classes_` (real, fake), calibrated by the model's temperature."""
        fake = self.spec.probability(self.decision_function(images, faces=faces, batch_size=batch_size))
        return np.stack([1.0 - fake, fake], axis=1)

    def predict_logits(self, crops: Sequence[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Raw fake-logits for regions already cut (RGB uint8 arrays, resized to the model's input size)."""
        size = self.spec.img_size
        return score_crops(
            self.engine, self.spec, [resize_image(as_rgb_array(c), size) for c in crops], batch_size
        )

    def prob_fake(self, crops: Sequence[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Calibrated probability of fake for regions already cut (see predict_logits)."""
        return self.spec.probability(self.predict_logits(crops, batch_size=batch_size))

    # ------------------------------------------------------------------ any source
    def predict(
        self,
        sources: Any,
        *,
        faces: FacesMode = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 2,
        heatmap_dir: str | Path | None = None,
        progress: bool = False,
        video: VideoOptions | None = None,
        save_dir: str | Path | None = None,
        report_dir: str | Path | None = None,
    ) -> list[Prediction]:
        """Score any mix of sources; one Prediction per image or video, in order, errors as rows.

        Sources: a path, folder (searched recursively), glob, `bytes`, RGB numpy array, PIL image or
        video path, or a list of them. Faces are cut by the model's crop spec (data/crop.py):
        faces="never" scores each whole image; "always" scores every detected face; "auto" is
        "always", except that a small square-ish image with no face found is scored whole.
        With heatmap_dir, Grad-CAM overlays per face and an index.html page are written there;
        with save_dir, an annotated copy of each image (Prediction.plot); with report_dir, a summary
        page (counts, P(fake) histogram, the most suspicious images).

        A video (mp4, mov, avi, webm, mkv) gives one VideoPrediction: frames sampled as `video`
        says (default 32, uniformly), faces tracked, one verdict (see inference/video/scoring.py);
        its contact sheet and timeline PNGs go to video.out_dir, else heatmap_dir, when set.
        """
        items = expand_sources(sources)
        results: list[Prediction] = []
        bar = _progress_bar(len(items)) if progress else None
        for chunk in self.iter_predict(
            items,
            faces=faces,
            batch_size=batch_size,
            workers=workers,
            heatmap_dir=heatmap_dir,
            video=video,
            save_dir=save_dir,
            report_dir=report_dir,
        ):
            results.extend(chunk)
            if bar is not None:
                bar(len(chunk))
        if bar is not None:
            bar(0, done=True)
        return results

    def iter_predict(
        self,
        sources: Any,
        *,
        faces: FacesMode = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 2,
        heatmap_dir: str | Path | None = None,
        video: VideoOptions | None = None,
        save_dir: str | Path | None = None,
        report_dir: str | Path | None = None,
    ) -> Iterator[list[Prediction]]:
        """Like `predict`, yielding the predictions batch by batch (to write and flush as they come)."""
        if faces not in FACES_MODES:
            raise ValueError(f"faces must be auto, always or never, got {faces!r}")
        items = sources if _all_items(sources) else expand_sources(sources)
        explainer, observers = make_observers(self, heatmap_dir, save_dir, report_dir)
        keep = bool(observers)

        def one(item: Item) -> Prepared:
            return prepare(item, self.spec, faces, keep_image=keep)

        try:
            for is_video, group in groupby(items, key=lambda item: item.kind == "video"):
                if is_video:  # one row per video, scored frame by frame
                    paths = [item.name for item in group]
                    yield from iter_video_predictions(
                        self,
                        paths,
                        video,
                        faces=faces,
                        batch_size=batch_size,
                        workers=workers,
                        grad_cam=explainer.grad_cam if explainer is not None else None,
                        pictures_dir=heatmap_dir or save_dir,
                        observers=observers,
                    )
                    continue
                prepared = iter_mapped(group, one, workers=workers)
                for batch in batched((p for _, p in prepared), batch_size):
                    predictions = score_prepared(self.engine, self.spec, batch, batch_size)  # type: ignore[arg-type]
                    for observer in observers:
                        observer.add(batch, predictions)
                    yield predictions
        finally:
            for observer in observers:
                observer.close()

    def torch_model(self) -> Any:
        """The PyTorch network (for Grad-CAM), loaded from the bundle when the engine is ONNX."""
        if isinstance(self.engine, TorchEngine):
            return self.engine.model
        if self._torch_model is None:
            if self.folder is not None and (self.folder / "head.json").is_file():
                raise RuntimeError(
                    f"{self.folder}: Grad-CAM heatmaps explain a CNN; this model scores frozen CLIP "
                    "features with a head (use --model fast for heatmaps)"
                )
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
        *,
        faces: FacesMode | None = None,
        **options: Any,
    ) -> dict[str, dict[str, Any]]:
        """Metrics, plots and report.html for each dataset (see evaluation.evaluate_datasets).

        Every image is cut as `predict` cuts it (the model's crop spec; faces default "auto") and
        scored by its largest face; images with no face found are scored whole and counted."""
        from deepfake_detector.evaluation import evaluate_datasets

        options.setdefault("decode", region_decoder(self.spec, faces or "auto"))  # as predict cuts
        options.setdefault("model_ref", str(self.folder or ""))
        return evaluate_datasets(self, datasets, out_dir, split, robustness, **options)

    @classmethod
    def train(
        cls,
        data: str | Path | Sequence[str | Path] | None,
        preset: str = "default",
        out: str | Path = "runs/latest",
        **options: Any,
    ) -> Detector | None:
        """Train a preset on a dataset (see training.train) and return the trained model as a Detector.

        data=None is for resume=True (the run's recorded dataset). Under DDP every rank runs this,
        but only global rank 0 calibrates and saves the model: the other ranks return None.
        """
        from deepfake_detector.training import train

        sources = (
            None if data is None else [str(d) for d in ([data] if isinstance(data, str | Path) else data)]
        )
        result = train(
            sources[0] if sources and len(sources) == 1 else sources, preset=preset, out=out, **options
        )
        if result.global_rank != 0:
            return None
        return cls.load(result.run_dir)

    def export(
        self,
        out_path: str | Path | None = None,
        format: str = "onnx",
        int8: bool = False,
        calibration_images: Sequence[str | Path] | str | Path | None = None,
        on_int8_report: Callable[[Any], None] | None = None,
    ) -> Path:
        """Export to ONNX (model.onnx beside model.json by default); int8 also writes model.int8.onnx.

        Returns the path of the file written last (the int8 model when int8=True); `on_int8_report`
        receives the int8 model's QuantReport (agreement and accuracy against fp32).
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
        if on_int8_report is not None:
            on_int8_report(report)
        return report.path


def _exported_file(folder: Path) -> Path:
    for name in ONNX_FILES:
        if (folder / name).is_file():
            return folder / name
    return folder / ONNX_FILES[0]


def _all_items(sources: Any) -> bool:
    return isinstance(sources, list) and all(isinstance(item, Item) for item in sources)


def _progress_bar(total: int) -> Callable[..., None]:
    from deepfake_detector.inference.progress import make_progress

    return make_progress(total)
