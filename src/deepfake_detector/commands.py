"""The library call behind each CLI command: one function per command, taking its options object.

Each checks its inputs and output paths before any work starts (one-line errors: ValueError and
its subclasses), then goes through the `Detector` facade (train, evaluate, export) or the dataset
runners. `predict` is `inference.batch_run.run_predict`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_detector.options import (
    EdaOptions,
    EvaluateOptions,
    ExportOptions,
    InfoOptions,
    PredictDatasetOptions,
    PushOptions,
    ServeOptions,
    TrainOptions,
    value_of,
)
from deepfake_detector.outputs import check_output_file, check_output_folder, read_head

if TYPE_CHECKING:
    from deepfake_detector.hub import PushResult
    from deepfake_detector.inference import Detector
    from deepfake_detector.spec import ModelSpec


def run_eda(options: EdaOptions, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The dataset report in options.out (see eda.run_eda); returns what summary.json holds."""
    check_output_folder(options.out, "report folder")
    from deepfake_detector.eda import run_eda as eda

    return eda(
        options.data,
        options.out,
        sample=options.limit_per_class,
        seed=options.seed,
        workers=options.workers,
        near_max_distance=options.near_distance,
        resume=options.resume,
        log=log,
    )


@dataclass
class TrainSummary:
    run_dir: Path
    spec: ModelSpec
    epochs: int

    def describe(self) -> str:
        val = self.spec.metrics.get("val", {})
        trained = f"epochs: {self.epochs}" if self.epochs else f"head on {', '.join(self.spec.trained_on)}"
        per_source = "".join(
            f"  {key.removeprefix('val/')} AUC: {m['roc_auc']:.4f}"
            for key, m in self.spec.metrics.items()
            if key.startswith("val/")
        )
        return (
            f"run: {self.run_dir}  {trained}{per_source}  "
            f"val AUC: {val.get('roc_auc', float('nan')):.4f}  "
            f"val accuracy: {val.get('accuracy', float('nan')):.4f}  threshold: {self.spec.threshold:.3f}  "
            f"temperature: {self.spec.temperature:.3f}"
        )


def check_resumable(run_dir: Path) -> None:
    """A run folder's data.json can be read (RunError naming the file otherwise)."""
    from deepfake_detector.training import RunError

    path = run_dir / "data.json"
    if not path.is_file():
        return  # training.train says what is missing
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise RunError(f"{path}: unreadable ({exc}); cannot resume this run") from exc
    missing = [
        key for key in ("root", "manifest_hash") if not isinstance(recorded, dict) or key not in recorded
    ]
    if missing:
        raise RunError(f"{path}: no {' or '.join(missing)} recorded; cannot resume this run")


def run_train(options: TrainOptions) -> TrainSummary | None:
    """Train (Detector.train); None on DDP ranks other than 0, which save no model."""
    from deepfake_detector.inference import Detector
    from deepfake_detector.models.registry import model_info

    if options.resume is not None:
        check_resumable(options.resume)
    else:
        check_output_folder(options.out, "run folder")
    overrides = options.overrides()  # a bad --set item fails here, before anything is written
    if options.model is not None:
        model_info(options.model)  # an unknown model fails here, before the data are read
    kwargs: dict[str, Any] = {
        "overrides": overrides,
        "resume": options.resume is not None,
        "progress": options.progress,
    }
    if options.faces is not None:
        kwargs["faces"] = value_of(options.faces)
    detector = Detector.train(options.data, preset=options.preset, out=options.run_dir, **kwargs)
    if detector is None:
        return None
    return TrainSummary(options.run_dir, detector.spec, _epochs_done(options.run_dir))


def _epochs_done(run_dir: Path) -> int:
    from deepfake_detector.training.callbacks import read_metrics

    return len({row.get("epoch") for row in read_metrics(run_dir / "metrics.csv")})


@dataclass
class EvaluateResult:
    metrics: dict[str, dict[str, Any]]  # what metrics.json holds, per dataset
    spec: ModelSpec


def run_evaluate(
    options: EvaluateOptions, on_progress: Callable[[str, int, int], None] | None = None
) -> EvaluateResult:
    """Metrics, plots and report.html in options.out (Detector.evaluate); datasets checked first."""
    from deepfake_detector.evaluation.evaluate import load_datasets
    from deepfake_detector.evaluation.holdout import TrainingData, load_training_data
    from deepfake_detector.inference import Detector
    from deepfake_detector.locate import ModelNotFound, model_dir

    check_output_folder(options.out, "report folder")
    try:
        training = load_training_data(model_dir(options.model))
    except ModelNotFound:
        training = TrainingData()  # Detector.load names the missing model, after the datasets
    # Before the model loads: a missing dataset, or one holding only training images, fails here.
    load_datasets(options.datasets, options.split, options.limit_per_class, training)
    detector = Detector.load(options.model, engine=value_of(options.engine), device=options.device)
    kwargs: dict[str, Any] = {
        "training": training,
        "batch_size": options.batch_size,
        "workers": options.workers,
        "limit": options.limit_per_class,
        "on_progress": on_progress,
        "model_ref": options.model,
    }
    if options.faces is not None:
        kwargs["faces"] = value_of(options.faces)
    metrics = detector.evaluate(
        options.datasets, options.out, split=options.split, robustness=options.robustness, **kwargs
    )
    return EvaluateResult(metrics, detector.spec)


@dataclass
class ExportResult:
    path: Path  # the fp32 ONNX model
    int8: Any = None  # the QuantReport of model.int8.onnx, when asked for


def run_export(options: ExportOptions) -> ExportResult:
    """ONNX (and int8) files of a model (Detector.export)."""
    from deepfake_detector.inference import Detector

    if options.out is not None:
        check_output_file(options.out, what="ONNX file", ours=lambda p: read_head(p, 1) == b"\x08")
    detector: Detector = Detector.load(options.model, engine="torch")
    assert detector.folder is not None
    reports: list[Any] = []
    path = detector.export(
        options.out,
        format=value_of(options.format),
        int8=options.int8,
        calibration_images=options.calib,
        on_int8_report=reports.append,
    )
    fp32 = options.out if options.out is not None else detector.folder / "model.onnx"
    return ExportResult(Path(fp32) if options.int8 else path, reports[0] if reports else None)


def run_predict_dataset(options: PredictDatasetOptions) -> Any:
    """A whole dataset into one Parquet file (scale.predict_dataset); returns its DatasetRun."""
    if options.out.suffix.lower() != ".parquet":
        raise ValueError(f"--out must name a .parquet file, got {options.out}")
    local = [] if "://" in options.source else [options.source]
    check_output_file(
        options.out, inputs=local, ours=lambda p: read_head(p, 4) == b"PAR1", what="Parquet file"
    )
    from deepfake_detector.scale import predict_dataset

    return predict_dataset(
        options.source,
        options.model,
        options.out,
        engine=value_of(options.runner),
        address=options.address,
        num_actors=options.num_actors,
        cpus_per_actor=options.cpus_per_actor,
        gpus_per_actor=options.gpus_per_actor,
        device=options.device,
        batch_size=options.batch_size,
        shard_rows=options.shard_rows,
        faces=value_of(options.faces),
        backend=value_of(options.engine),
        workers=options.workers,
        threads=options.threads,
    )


def dataset_exit_code(images: int, errors: int) -> int:
    """0: every image read; 1: some could not be; 2: none could."""
    if not errors:
        return 0
    return 2 if errors >= images else 1


def serve(options: ServeOptions) -> None:
    """Run the HTTP API and web page (uvicorn), after checking the model and the limits."""
    import os

    import uvicorn

    from deepfake_detector.locate import model_dir
    from deepfake_detector.service.app import CONFIG_ENV
    from deepfake_detector.service.limits import ServiceLimits
    from deepfake_detector.service.logging import uvicorn_log_config

    model_dir(options.model)  # a wrong model fails here, before any worker starts
    ServiceLimits(
        max_upload_mb=options.max_upload_mb,
        max_pixels=options.max_pixels,
        queue_size=options.queue_size,
        timeout_s=options.timeout,
    )
    # Worker processes rebuild the app from this (uvicorn needs an import string for workers > 1).
    os.environ[CONFIG_ENV] = json.dumps(options.service_config())
    uvicorn.run(
        "deepfake_detector.service.app:app_from_env",
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_config=uvicorn_log_config(value_of(options.log_level)),
        access_log=False,
        # Connections beyond this get 503 from uvicorn itself: bounds memory held by slow uploads.
        limit_concurrency=max(64, 4 * options.queue_size),
        timeout_keep_alive=int(options.keep_alive),
    )


@dataclass
class ModelInfo:
    """What `info` shows: the model's card and a summary of its spec."""

    folder: Path
    spec: ModelSpec
    detects: str
    card: str

    def to_dict(self) -> dict[str, Any]:
        from deepfake_detector.modelcard import spec_summary

        return {"folder": str(self.folder), **spec_summary(self.spec), "detects": self.detects,
                "model_card": self.card}  # fmt: skip


def run_info(options: InfoOptions) -> ModelInfo:
    """A model's MODEL_CARD.md (made from its model.json when the folder has none: older runs)."""
    from deepfake_detector.locate import model_dir
    from deepfake_detector.modelcard import detects_line, model_card_text
    from deepfake_detector.spec import ModelSpec

    folder = model_dir(options.model)
    spec = ModelSpec.load(folder / "model.json")
    return ModelInfo(folder, spec, detects_line(spec), model_card_text(folder, spec))


def run_push(options: PushOptions) -> PushResult:
    """Upload a finished model to the Hugging Face Hub (hub.push_model)."""
    from deepfake_detector.hub import push_model

    return push_model(
        options.run,
        options.repo,
        private=options.private,
        revision=options.revision,
        message=options.message,
        license=options.license,
    )
