"""`FusedEngine`: a CLIP head and a CNN as one model (one model.json, one verdict). Torch-free.

The fused logit mixes the CLIP head's logit and the CNN's, weighted by d = P(the image looks like
the CNN's training data) from a second head on the same CLIP features (see training/heads.py).
Each network gets its own input from the same uint8 face region: the CLIP encoder its 224 px
CLIP-normalised crop, the CNN the region resized to its size with its normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.images import resize_image
from deepfake_detector.features.heads import FeatureHead
from deepfake_detector.inference.engines import ModelMismatch
from deepfake_detector.models.clip.engine import ClipHeadEngine
from deepfake_detector.spec import ModelSpec, preprocess_batch

FUSION_INPUTS = ["clip*(1-d)", "clip*d", "cnn*d", "cnn*(1-d)"]


class FusedEngine:
    """uint8 face regions (n, 224, 224, 3) -> (n,) fused fake-logits."""

    name = "clip+cnn-onnx"

    def __init__(self, clip: ClipHeadEngine, domain: FeatureHead, cnn: Any, spec: ModelSpec):
        self.clip, self.domain, self.cnn, self.spec = clip, domain, cnn, spec
        fusion = spec.fusion
        self.weights = np.asarray(fusion["weights"], dtype=np.float64)
        self.bias = float(fusion["bias"])

    @classmethod
    def load(cls, folder: str | Path, spec: ModelSpec, threads: int | None = None) -> FusedEngine:
        from deepfake_detector.inference.detector import Detector

        folder = Path(folder)
        fusion = spec.fusion
        if fusion.get("inputs") != FUSION_INPUTS or len(fusion.get("weights", [])) != len(FUSION_INPUTS):
            raise ModelMismatch(f"{folder / 'model.json'}: field 'fusion' is not a fusion this version reads")
        clip = ClipHeadEngine.load(folder, spec, threads=threads)
        domain = FeatureHead.load(folder / str(fusion["domain"]))
        if domain.feature_set != clip.head.feature_set:
            raise ModelMismatch(f"{folder}: the domain head and the CLIP head use different features")
        reference = str(fusion["cnn"])
        local = folder / reference
        cnn = Detector.load(local if (local / "model.json").is_file() else reference, threads=threads)
        return cls(clip, domain, cnn, spec)

    def logits_from_crops(self, crops: np.ndarray) -> np.ndarray:
        features = self.clip.encoder.encode(list(crops))
        clip = self.clip.head.logits(features).astype(np.float64)
        d = 1.0 / (1.0 + np.exp(-np.clip(self.domain.logits(features), -30, 30)))
        size = int(self.cnn.spec.img_size)
        small = [resize_image(np.ascontiguousarray(c), size) for c in crops]
        cnn = np.asarray(self.cnn.engine.logits(preprocess_batch(small, self.cnn.spec)), dtype=np.float64)
        mix = np.stack([clip * (1 - d), clip * d, cnn * d, cnn * (1 - d)], axis=1)
        return (mix @ self.weights + self.bias).astype(np.float32)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """For callers holding a CLIP-normalised float batch: undo the normalisation, then fuse."""
        mean = np.asarray(self.spec.mean, np.float32)[None, :, None, None]
        std = np.asarray(self.spec.std, np.float32)[None, :, None, None]
        pixels = np.clip(np.rint((batch * std + mean) * 255.0), 0, 255).astype(np.uint8)
        return self.logits_from_crops(pixels.transpose(0, 2, 3, 1))


def load_clip_engine(folder: str | Path, spec: ModelSpec, threads: int | None = None) -> Any:
    """The engine a clip-vit-b16 model folder needs: a fused one when its spec has a fusion."""
    if spec.fusion:
        return FusedEngine.load(folder, spec, threads=threads)
    return ClipHeadEngine.load(folder, spec, threads=threads)
