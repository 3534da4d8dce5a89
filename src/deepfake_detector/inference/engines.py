"""Inference engines: a batch of preprocessed images (float32 NCHW) in, one fake-logit per image out.

`OnnxEngine` never imports torch, so a slim install (numpy + onnxruntime + the image decoders)
can serve an exported model. `TorchEngine` runs the bundle itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deepfake_detector.fileio import sha256_file
from deepfake_detector.spec import ModelSpec

DEFAULT_ORT_THREADS = 2
ONNX_INPUT = "input"
ONNX_OUTPUT = "logit"
# The model.json fields holding the SHA-256 of the exports it vouches for (written by `export`).
ONNX_HASH_FIELDS = ("onnx_sha256", "int8_onnx_sha256")


class Engine(Protocol):
    name: str
    spec: ModelSpec

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


def max_threads() -> int:
    """The most threads (or worker processes) a command may ask for: 4 per core, at least 16.
    Far more than that only costs memory, and torch.set_num_threads(100000) crashes the process."""
    return max(16, 4 * (os.cpu_count() or 1))


def check_threads(threads: int | None) -> int | None:
    """`threads` if it is None or 1 to max_threads(); else ValueError saying the bounds."""
    if threads is not None and not 1 <= int(threads) <= max_threads():
        raise ValueError(f"--threads must be 1 to {max_threads()} (4 per core here), got {threads}")
    return threads


class ModelMismatch(ValueError):
    """An exported model that does not belong to the model.json beside it."""


class TorchEngine:
    """A model bundle run by PyTorch: batched, no autograd, channels-last memory layout."""

    name = "torch"

    def __init__(self, model: Any, spec: ModelSpec, threads: int | None = None, device: str = "cpu"):
        import torch

        if check_threads(threads):
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.spec = spec
        self.device = torch.device(resolve_device(device))
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        # On a GPU, TF32 matmuls and cuDNN autotuning; scores move by ~1e-4, decisions do not.
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    @classmethod
    def load(cls, model_ref: str | Path, threads: int | None = None, device: str = "cpu") -> TorchEngine:
        from deepfake_detector.models import load_bundle

        model, spec = load_bundle(model_ref)
        return cls(model, spec, threads=threads, device=device)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if self.device.type != "cpu":
            x = x.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            out = self.model(x.contiguous(memory_format=torch.channels_last))
        return out.reshape(-1).float().cpu().numpy()


def resolve_device(device: str) -> str:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (the first GPU when there is one) -> a torch device string."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is visible to PyTorch")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {device!r}")
    return device


class OnnxEngine:
    """An exported .onnx model run by ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, onnx_path: str | Path, spec: ModelSpec, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(onnx_path)
        self.spec = spec
        check_onnx_file(self.path)
        check_onnx_hash(self.path, spec)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(check_threads(threads) or DEFAULT_ORT_THREADS)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle ORT threads sleep instead of spinning: the decode threads need those cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelMismatch(f"{self.path}: ONNX Runtime cannot load this model ({exc})") from exc
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self._check_matches_spec()
        self.input_name = self.session.get_inputs()[0].name

    def _check_matches_spec(self) -> None:
        exported_from = self.metadata.get("weights_sha256", "")
        if exported_from and self.spec.weights_sha256 and exported_from != self.spec.weights_sha256:
            raise ModelMismatch(
                f"{self.path}: exported from other weights than model.json describes (SHA-256 "
                f"{exported_from[:12]}... vs {self.spec.weights_sha256[:12]}...); "
                "re-run `deepfake-detector export`"
            )
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or any(isinstance(d, int) and d != self.spec.img_size for d in shape[2:]):
            raise ModelMismatch(
                f"{self.path}: input shape {shape} does not take "
                f"{self.spec.img_size}x{self.spec.img_size} images"
            )

    def logits(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        (out,) = self.session.run(None, {self.input_name: x})
        return np.asarray(out, dtype=np.float32).reshape(-1)


def check_onnx_hash(path: Path, spec: ModelSpec) -> None:
    """Refuse an .onnx file that is none of the exports model.json records by SHA-256 (another
    model's file, even with its metadata stripped). A model.json from before these hashes has none:
    nothing to check then."""
    expected = {str(getattr(spec, name, "") or "") for name in ONNX_HASH_FIELDS} - {""}
    if not expected:
        return
    actual = sha256_file(path)
    if actual not in expected:
        raise ModelMismatch(
            f"{path}: not the ONNX export model.json records (SHA-256 {actual[:12]}..., model.json "
            f"expects {' or '.join(h[:12] + '...' for h in sorted(expected))}); "
            "re-run `deepfake-detector export` for this model"
        )


def check_onnx_file(path: Path) -> None:
    """Validate an .onnx file with onnx.checker when the onnx package is installed (not in slim installs)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model file not found")
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(os.fspath(path))
    except Exception as exc:
        raise ModelMismatch(f"{path}: not a valid ONNX model ({exc})") from exc


def torch_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # sys.modules["torch"] = None makes find_spec raise
        return False


def gpu_visible() -> bool:
    """True when PyTorch is installed and sees a CUDA GPU (never imports torch in a slim install)."""
    if not torch_available():
        return False
    import torch

    return torch.cuda.is_available()
