"""`ClipEncoder`: frozen CLIP ViT-B/16 features from the packaged int8 ONNX file, on the CPU.

The graph quantises its activations dynamically (one uint8 scale per tensor, i.e. per *batch*),
so an image's features would depend on which other images share its batch (cosine 0.97-0.99
between the same image alone and in a batch). Every image therefore runs on its own (batch 1):
features are a function of the image alone, and batch-1 runs cost the same per image as batch-8
runs (2 threads on the project's 2-core machine: 90 vs 89 ms/img best, 96 vs 101 median).
The int8 features are also very sensitive to their input: adding noise of 1e-6 to a normalised
image moves the last-layer CLS by cosine ~0.975 (per-tensor activation scales are set by CLIP's
outlier channels), so crops must be preprocessed exactly as at training time. `precision="fp32"`
runs the same weights dequantised, with float activations (smooth, the exact counterpart of the
PyTorch rebuild, slower). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.models.clip.graph import (
    EMBED_OUTPUT,
    INPUT_NAME,
    TOKENS_OUTPUT,
    FeatureSet,
    float_graph,
    graph_with_cls_outputs,
)
from deepfake_detector.models.clip.package import ENCODER_ID, ENCODER_SHA256, verify_encoder
from deepfake_detector.spec import ModelSpec, preprocess_batch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMG_SIZE = 224
DEFAULT_THREADS = 2
# How the encoder is fed: the preprocessing contract shared by the encoder, engine and cache.
CLIP_INPUT = ModelSpec(architecture="clip-vit-b16", img_size=IMG_SIZE, mean=CLIP_MEAN, std=CLIP_STD)


def clip_session_options(threads: int | None) -> Any:
    """onnxruntime.SessionOptions: `threads` intra-op threads (default 2), no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or DEFAULT_THREADS)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle ORT threads sleep instead of spinning: decode threads need those cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class ClipEncoder:
    """Images -> (n, dim) float32 features of one feature set (see `graph.FeatureSet`)."""

    def __init__(
        self,
        feature_set: str = "cls12",
        path: str | Path | None = None,
        threads: int | None = None,
        expected_sha256: str = ENCODER_SHA256,
        precision: str = "int8",
    ):
        import onnxruntime as ort

        if precision not in ("int8", "fp32"):
            raise ValueError(f"CLIP encoder precision must be 'int8' or 'fp32', got {precision!r}")
        self.features = FeatureSet.parse(feature_set)
        self.precision = precision
        self.path = verify_encoder(path, expected_sha256)
        self.encoder_id = ENCODER_ID if expected_sha256 == ENCODER_SHA256 else f"clip-{expected_sha256[:12]}"
        if precision == "fp32":
            self.encoder_id += "-fp32"
        model: str | bytes = str(self.path)
        if precision == "fp32":
            model = float_graph(self.path)
        elif self.features.needs_graph_edit:
            model = graph_with_cls_outputs(self.path)
        self.session = ort.InferenceSession(
            model, sess_options=clip_session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._outputs = [self._output_name(c) for c in self.features.components]
        self.calls = 0  # images encoded by this instance (tests check cache hits with it)

    def _output_name(self, component: str) -> str:
        if component == "embed":
            return EMBED_OUTPUT
        if component == "cls12" and self.precision == "int8" and not self.features.needs_graph_edit:
            return TOKENS_OUTPUT
        return component

    @property
    def feature_set(self) -> str:
        return self.features.name

    @property
    def dim(self) -> int:
        return self.features.dim

    @property
    def key(self) -> str:
        """Identifies what these features are: encoder file + feature set (a cache key part)."""
        return f"{self.encoder_id}:{self.feature_set}"

    def encode(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 224x224 crops (list or NHWC) or a float32 NCHW batch normalised with CLIP's
        mean/std -> (n, dim) float32. Each image runs alone, so results do not depend on batching."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = to_clip_batch(images)
        out = np.empty((batch.shape[0], self.dim), dtype=np.float32)
        for i in range(batch.shape[0]):
            out[i] = self._encode_one(batch[i : i + 1])
        self.calls += batch.shape[0]
        return out

    def _encode_one(self, x: np.ndarray) -> np.ndarray:
        parts = self.session.run(self._outputs, {INPUT_NAME: x})
        flat = [p[:, 0] if p.ndim == 3 else p for p in parts]  # the token sequence -> its CLS token
        return np.concatenate(flat, axis=1)[0]


def to_clip_batch(images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """uint8 crops -> normalised float32 NCHW; a float32 NCHW batch is checked and passed through."""
    if isinstance(images, np.ndarray) and images.dtype == np.float32 and images.ndim == 4:
        if images.shape[1:] != (3, IMG_SIZE, IMG_SIZE):
            raise ValueError(f"expected a (N, 3, {IMG_SIZE}, {IMG_SIZE}) float32 batch, got {images.shape}")
        return np.ascontiguousarray(images)
    batch = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
    if batch.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 crops or a float32 NCHW batch, got dtype {batch.dtype}")
    return preprocess_batch(batch, CLIP_INPUT)
