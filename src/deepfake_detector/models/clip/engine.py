"""`ClipHeadEngine`: the Engine protocol over CLIP features and a fitted head. Torch-free.

A model folder holds `model.json` (the spec), `head.safetensors` and `head.json`; the encoder comes
from its package (`models.clip.package`), checked against the encoder id the head was fitted on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepfake_detector.features.heads import HEAD_META, FeatureHead
from deepfake_detector.inference.engines import ModelMismatch
from deepfake_detector.models.clip.encoder import CLIP_MEAN, CLIP_STD, IMG_SIZE, ClipEncoder
from deepfake_detector.spec import ModelSpec


class ClipHeadEngine:
    """A float32 NCHW batch normalised with CLIP's mean/std -> (n,) fake-logits."""

    name = "clip-onnx"

    def __init__(self, encoder: ClipEncoder, head: FeatureHead, spec: ModelSpec):
        self.encoder, self.head, self.spec = encoder, head, spec

    @classmethod
    def load(cls, folder: str | Path, spec: ModelSpec, threads: int | None = None) -> ClipHeadEngine:
        folder = Path(folder)
        check_clip_spec(spec, folder / "model.json")
        head = FeatureHead.load(folder)
        precision = "fp32" if head.encoder_id.endswith("-fp32") else "int8"
        encoder = ClipEncoder(head.feature_set, threads=threads, precision=precision)
        if encoder.encoder_id != head.encoder_id:
            raise ModelMismatch(
                f"{folder / HEAD_META}: head was fitted on encoder {head.encoder_id}, "
                f"the installed encoder is {encoder.encoder_id}"
            )
        return cls(encoder, head, spec)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.head.logits(self.encoder.encode(np.asarray(batch, dtype=np.float32)))


def check_clip_spec(spec: ModelSpec, source: str | Path) -> None:
    """The spec must feed the encoder 224x224 crops normalised with CLIP's mean and std."""
    same = np.allclose(spec.mean, CLIP_MEAN, atol=1e-7) and np.allclose(spec.std, CLIP_STD, atol=1e-7)
    if spec.img_size != IMG_SIZE or not same:
        raise ModelMismatch(
            f"{source}: a CLIP head needs img_size {IMG_SIZE} and CLIP mean/std, got img_size "
            f"{spec.img_size}, mean {tuple(spec.mean)}, std {tuple(spec.std)}"
        )
