"""Export a model bundle to ONNX (checked against PyTorch), and optional static int8 quantisation.

ONNX layout: input "input" float32 NCHW (dynamic batch), output "logit" (N, 1), opset 17, written
by the TorchScript exporter (dynamo=False). The file records the weights' SHA-256 so a stale
export next to retrained weights is refused at load time, and model.json records the export's
SHA-256 (`onnx_sha256`, `int8_onnx_sha256`) so that any other .onnx put in its place is refused too,
even with its metadata stripped.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.images import IMAGE_EXTENSIONS, UnreadableImage, load_image
from deepfake_detector.fileio import atomic_write_bytes, atomic_write_text
from deepfake_detector.inference.engines import ONNX_HASH_FIELDS, ONNX_INPUT, ONNX_OUTPUT, OnnxEngine
from deepfake_detector.locate import model_dir
from deepfake_detector.spec import ModelSpec, preprocess_batch

OPSET = 17
VERIFY_ATOL = 1e-4
CALIBRATION_IMAGES = 200
INT8_FILE = "model.int8.onnx"


class ExportError(RuntimeError):
    pass


def export_onnx(model_ref: str | Path, out_path: str | Path | None = None, *, verify: bool = True) -> Path:
    """Write the bundle as ONNX (default: model.onnx beside model.json), atomically; returns its path."""
    import onnx
    import torch

    from deepfake_detector.models import load_bundle

    model, spec = load_bundle(model_ref)
    folder = model_dir(model_ref)
    out = Path(out_path) if out_path else folder / "model.onnx"
    dummy = torch.randn(2, 3, spec.img_size, spec.img_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation notices
        torch.onnx.export(
            model,
            (dummy,),
            buffer,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    _set_metadata(proto, spec)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    atomic_write_bytes(out, data)
    record_export_hash(folder, out, data, spec, "onnx_sha256")
    if verify:
        verify_against_torch(model, out, spec)
    return out


def record_export_hash(folder: Path, out: Path, data: bytes, spec: ModelSpec, field: str) -> None:
    """Write the export's SHA-256 into `field` of folder/model.json (atomically, other fields kept
    as they are) and of `spec`, when the export sits beside that model.json: the only place where
    it is used with it. An export written elsewhere is left unrecorded."""
    spec_path = folder / "model.json"
    if not spec_path.is_file() or out.resolve().parent != folder.resolve():
        return
    digest = hashlib.sha256(data).hexdigest()
    try:
        recorded = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{spec_path}: cannot record the export's SHA-256 ({exc})") from exc
    recorded[field] = digest
    atomic_write_text(spec_path, json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    setattr(spec, field, digest)


def _unchecked(spec: ModelSpec) -> ModelSpec:
    """A copy of `spec` without recorded export hashes: to run a file just written here, wherever it
    was written (the hash check is for files found beside model.json)."""
    spec = copy.copy(spec)
    for name in ONNX_HASH_FIELDS:
        if hasattr(spec, name):
            setattr(spec, name, "")
    return spec


def _set_metadata(proto: Any, spec: ModelSpec) -> None:
    import onnx

    from deepfake_detector import __version__

    values = {
        "weights_sha256": spec.weights_sha256,
        "architecture": spec.architecture,
        "img_size": str(spec.img_size),
        "exported_by": f"deepfake-detector {__version__}",
    }
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, values)


def verify_against_torch(model: Any, onnx_path: Path, spec: ModelSpec, n: int = 8) -> float:
    """Max |logit difference| between PyTorch and ONNX Runtime on random inputs; raises above tolerance."""
    import torch

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, spec.img_size, spec.img_size, 3), dtype=np.uint8)
    batch = preprocess_batch(images, spec)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).reshape(-1).numpy()
    got = OnnxEngine(onnx_path, _unchecked(spec), threads=1).logits(batch)
    diff = float(np.max(np.abs(expected - got)))
    scale = max(1.0, float(np.max(np.abs(expected))))
    if diff > VERIFY_ATOL * scale:
        raise ExportError(
            f"{onnx_path}: ONNX logits differ from PyTorch by {diff:.2e} (tolerance {VERIFY_ATOL})"
        )
    return diff


@dataclass
class QuantReport:
    """What int8 quantisation did to the model's decisions on the calibration images."""

    path: Path
    calibration: str  # where the calibration images came from
    n_images: int
    decision_agreement: float  # fraction of images with the same fake/real call as fp32
    max_abs_prob_diff: float
    accuracy_fp32: float | None  # when the calibration images have real/fake labels
    accuracy_int8: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def quantize_int8(
    fp32_path: str | Path,
    spec: ModelSpec,
    calibration: Sequence[str | Path] | str | Path | None = None,
    out_path: str | Path | None = None,
    n_images: int = CALIBRATION_IMAGES,
    model_folder: str | Path | None = None,
) -> QuantReport:
    """Static QDQ int8 quantisation (per-channel weights) calibrated on ~n_images real images.

    Without `calibration`, the validation split of the run's training data (model_folder/data.json,
    model_folder defaulting to the fp32 file's folder) is used when it is there."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path = Path(fp32_path)
    out = Path(out_path) if out_path else fp32_path.with_name(INT8_FILE)
    folder = Path(model_folder) if model_folder else fp32_path.parent
    images, labels, source = calibration_set(spec, calibration, n_images, folder)
    batch = preprocess_batch(images, spec)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter([batch[i : i + 16] for i in range(0, len(batch), 16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self.chunks, None)
            return None if chunk is None else {ONNX_INPUT: chunk}

    with tempfile.TemporaryDirectory(prefix="quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        proto = onnx.load(str(quantized))
    _set_metadata(proto, spec)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    atomic_write_bytes(out, data)
    record_export_hash(folder, out, data, spec, "int8_onnx_sha256")

    prob32 = spec.probability(OnnxEngine(fp32_path, _unchecked(spec)).logits(batch))
    prob8 = spec.probability(OnnxEngine(out, _unchecked(spec)).logits(batch))
    fake32, fake8 = prob32 >= spec.threshold, prob8 >= spec.threshold
    acc32 = acc8 = None
    if labels is not None:
        acc32 = float(np.mean(fake32 == labels.astype(bool)))
        acc8 = float(np.mean(fake8 == labels.astype(bool)))
    return QuantReport(
        path=out,
        calibration=source,
        n_images=len(images),
        decision_agreement=float(np.mean(fake32 == fake8)),
        max_abs_prob_diff=float(np.max(np.abs(prob32 - prob8))),
        accuracy_fp32=acc32,
        accuracy_int8=acc8,
    )


def calibration_set(
    spec: ModelSpec,
    calibration: Sequence[str | Path] | str | Path | None,
    n_images: int,
    model_folder: Path | None = None,
) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    """(images at img_size, labels or None, description): the given folder/files, else the validation
    split of the data the model was trained on (data.json in the run folder), else seeded noise."""
    paths: list[Path] = []
    labels: np.ndarray | None = None
    source = ""
    if isinstance(calibration, (str, Path)):
        paths, labels = _sample_folder(Path(calibration), n_images)
        source = str(calibration)
    elif calibration is not None:
        paths = [Path(p) for p in calibration][:n_images]
        source = f"{len(paths)} given files"
    else:
        root = _training_data_root(model_folder, spec)
        if root is not None:
            paths, labels = _sample_folder(root, n_images, split="val")
            source = f"{root} (validation split)"
    images: list[np.ndarray] = []
    kept: list[int] = []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, size=spec.img_size))
            kept.append(i)
        except UnreadableImage:
            continue
    if labels is not None:
        labels = labels[kept]
    if not images:
        if calibration is not None:
            raise ExportError(f"{calibration}: no readable calibration images found")
        warnings.warn(
            "no calibration images (pass --calib DIR): calibrating int8 on random noise, "
            "which can cost accuracy",
            stacklevel=2,
        )
        rng = np.random.default_rng(0)
        images = list(rng.integers(0, 256, size=(32, spec.img_size, spec.img_size, 3), dtype=np.uint8))
        return images, None, "random noise (no calibration images given)"
    return images, labels, source


def _training_data_root(model_folder: Path | None, spec: ModelSpec) -> Path | None:
    """The dataset root a run recorded (data.json beside model.json, or model.json's trained_on)."""
    candidates: list[str] = []
    if model_folder is not None and (model_folder / "data.json").is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            candidates.append(str(json.loads((model_folder / "data.json").read_text())["root"]))
    candidates.extend(spec.trained_on)
    return next((Path(c) for c in candidates if Path(c).is_dir()), None)


def _sample_folder(
    root: Path, n_images: int, split: str | None = None
) -> tuple[list[Path], np.ndarray | None]:
    """A seeded sample of a labelled dataset folder (real/fake), or of any folder of images."""
    from deepfake_detector.data.manifest import DatasetError, discover_split

    try:
        manifest = discover_split(root, split) if split else discover_split(root)
        if len(manifest.samples) > n_images:  # sample() takes a count per class
            manifest = manifest.sample(max(1, n_images // 2))
        return [Path(p) for p in manifest.paths], np.asarray(manifest.labels)
    except (DatasetError, ValueError):
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ExportError(f"{root}: no images found for calibration") from None
        rng = np.random.default_rng(0)
        picked = rng.choice(len(files), size=min(n_images, len(files)), replace=False)
        return [files[i] for i in sorted(picked)], None
