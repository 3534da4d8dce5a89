"""Coverage-guided fuzzing of the image loader with atheris (libFuzzer for Python). Optional.

The contract under test is the one tests/test_fuzz.py checks with hypothesis, for as long as you
like: any bytes given to `load_image` / `read_image_info` give an RGB uint8 image of the size the
header declares, or `UnreadableImage`; any other exception is a crash and libFuzzer saves the input.

Usage (from the repository root; pytest never imports this file):

    pip install atheris
    python fuzz/fuzz_load_image.py -max_total_time=600                  # 10 minutes
    python fuzz/fuzz_load_image.py fuzz/corpus -max_total_time=600      # keep what it finds
    python fuzz/fuzz_load_image.py crash-<sha1>                         # replay a saved crash

With no corpus folder it seeds itself with a few small JPEG/PNG/GIF/WEBP/BMP/TIFF files (and the
first dfdc Test images when ../shared/data is there). Inputs are capped at 64 KiB and decoding at
4 million pixels so each run is fast. Any libFuzzer flag works (-jobs, -dict, -rss_limit_mb, ...).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

MAX_PIXELS = 4_000_000
MAX_INPUT = 64 * 1024
ROTATED = frozenset({5, 6, 7, 8})
SHARED_TEST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dfdc" / "Test"


def check(data: bytes) -> None:
    """One input: an image matching its header, or UnreadableImage. Anything else propagates."""
    from deepfake_detector.data.images import UnreadableImage, load_image, read_image_info

    try:
        info = read_image_info(data, max_pixels=MAX_PIXELS)
    except UnreadableImage:
        info = None
    try:
        image = load_image(data, max_pixels=MAX_PIXELS)
    except UnreadableImage:
        return
    if info is None:
        raise AssertionError("load_image decoded bytes that read_image_info refused")
    height, width = (info.width, info.height) if info.orientation in ROTATED else (info.height, info.width)
    if image.dtype != np.uint8 or image.shape != (height, width, 3):
        raise AssertionError(f"bad decode: {image.dtype} {image.shape}, header says {width}x{height}")
    try:
        small = load_image(data, size=48, max_pixels=MAX_PIXELS)
    except UnreadableImage:
        return
    if small.shape != (48, 48, 3):
        raise AssertionError(f"size=48 gave {small.shape}")


def seeds() -> list[bytes]:
    """Small valid files of every supported format, plus a few real face crops when present."""
    from PIL import Image

    yy, xx = np.mgrid[0:24, 0:32]
    rgb = np.stack([xx * 8, yy * 10, np.full_like(xx, 90)], -1).astype(np.uint8)
    out = []
    for fmt, options in (("JPEG", {"quality": 80}), ("PNG", {}), ("GIF", {}), ("WEBP", {}), ("BMP", {}),
                         ("TIFF", {})):  # fmt: skip
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=fmt, **options)
        out.append(buffer.getvalue())
    for cls in ("Real", "Fake"):
        folder = SHARED_TEST / cls
        if folder.is_dir():
            out += [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:2]]
    return [seed[:MAX_INPUT] for seed in out]


def main(argv: list[str]) -> None:
    import atheris

    warnings.filterwarnings("ignore", category=UserWarning)  # Pillow's notes on odd EXIF/TIFF tags
    with atheris.instrument_imports():  # coverage feedback from the loader and Pillow's decoders
        import PIL.BmpImagePlugin  # noqa: F401
        import PIL.GifImagePlugin  # noqa: F401
        import PIL.Image  # noqa: F401
        import PIL.ImageOps  # noqa: F401
        import PIL.JpegImagePlugin  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401
        import PIL.TiffImagePlugin  # noqa: F401
        import PIL.WebPImagePlugin  # noqa: F401

        import deepfake_detector.data.images  # noqa: F401

    def one_input(data: bytes) -> None:
        check(data[:MAX_INPUT])

    args = list(argv)
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus folder or crash file given
        seed_dir = tempfile.mkdtemp(prefix="fuzz-seeds-")
        for i, seed in enumerate(seeds()):
            Path(seed_dir, f"seed{i}").write_bytes(seed)
        args.append(seed_dir)
    for arg in args[1:]:
        if not arg.startswith("-") and not os.path.exists(arg):
            os.makedirs(arg)  # a new corpus folder
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
