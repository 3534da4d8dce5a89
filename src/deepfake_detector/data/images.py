"""The one place images are decoded: any supported file or bytes -> RGB uint8 array.

JPEGs without EXIF rotation take simplejpeg's DCT-scaled decode (4-6x faster than PIL when a
smaller size is wanted); everything else goes through Pillow with explicit conversions.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from deepfake_detector.filelimits import MAX_FILE_BYTES, describe_limit  # noqa: F401 (re-exported)

# About 12k x 12k: far above any face photo, far below what would exhaust memory.
DEFAULT_MAX_PIXELS = 150_000_000
# Largest image file read (checked with os.stat before a byte is read): a 12k x 12k photo is far
# smaller; anything bigger is refused rather than loaded into memory.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO", "TIFF"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_EXIF_ORIENTATION = 0x0112


class UnreadableFile(ValueError):
    """An input file that cannot be decoded or is refused; carries the file and the reason."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = str(path) if path is not None else "<bytes>"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnreadableImage(UnreadableFile):
    """An image that cannot be decoded; carries the file and the reason."""


@dataclass(frozen=True)
class ImageInfo:
    """Header facts read without decoding the pixels."""

    width: int
    height: int
    format: str
    mode: str
    orientation: int


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _os_error(path: str, exc: OSError, error: type[UnreadableFile], what: str) -> UnreadableFile:
    """The loader's one-line reason for an OSError raised by stat or open."""
    if isinstance(exc, IsADirectoryError):
        return error(path, f"is a directory, not {what} file")
    if isinstance(exc, PermissionError):
        return error(path, "permission denied")
    if isinstance(exc, FileNotFoundError):
        return error(path, "file not found")
    if exc.errno == errno.ELOOP:
        return error(path, "symbolic link loop (too many levels of symbolic links)")
    return error(path, f"cannot read file ({exc.strerror or exc})")


def check_stat(
    info: os.stat_result,
    path: str,
    max_bytes: int | None,
    error: type[UnreadableFile] = UnreadableImage,
    what: str = "an image",
) -> None:
    """Refuse what is not a regular file (a folder, FIFO, device, socket) or is over `max_bytes`."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise error(path, f"is a directory, not {what} file")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise error(path, f"is {kind}, not a regular file (only regular files are read)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(path, f"file too large: {info.st_size:,} bytes, the limit is {describe_limit(max_bytes)}")


def check_regular_file(
    path: str | Path,
    max_bytes: int | None = MAX_FILE_BYTES,
    *,
    error: type[UnreadableFile] = UnreadableImage,
    what: str = "an image",
) -> int:
    """os.stat `path` (following links) and refuse it unless it is a regular file of at most
    `max_bytes`; returns its size. Nothing is opened, so a FIFO or a device is never read."""
    path = str(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc, error, what) from exc
    check_stat(info, path, max_bytes, error, what)
    return info.st_size


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


def _read_bytes(source: str | Path | bytes, max_bytes: int | None = None) -> tuple[bytes, str | None]:
    """The bytes of an image given as bytes or a path. A path must be a regular file of at most
    `max_bytes` (default MAX_FILE_BYTES), checked by stat before it is opened and again on the open
    file (opened non-blocking, so a file swapped for a FIFO in between cannot hang the read)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    path = str(source)
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    check_regular_file(path, limit)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _os_error(path, exc, UnreadableImage, "an image") from exc
    try:
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            check_stat(info, path, limit)
            data = fh.read(info.st_size + 1)  # one byte more: a file that grew since is seen
            if len(data) > info.st_size:
                data += fh.read(max(0, limit + 1 - len(data)))
    except OSError as exc:
        raise _os_error(path, exc, UnreadableImage, "an image") from exc
    if len(data) > limit:  # it grew after the stat
        raise UnreadableImage(path, f"file too large: the limit is {describe_limit(limit)}")
    return data, path


def read_file(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a file; raises UnreadableImage naming the file and why it cannot be read
    (missing, a directory, not a regular file, over `max_bytes` (default MAX_FILE_BYTES),
    permission denied, a symbolic link loop, an I/O error)."""
    return _read_bytes(Path(path), max_bytes)[0]


def _open(data: bytes, path: str | None) -> Image.Image:
    if not data:
        raise UnreadableImage(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        head = data[:64].lstrip().lower()
        kind = "text/HTML" if head.startswith((b"<", b"{")) or head.isascii() else "unknown binary data"
        raise UnreadableImage(path, f"not an image (content looks like {kind})") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(path, f"decompression bomb refused ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for broken headers
        raise UnreadableImage(path, f"broken image header ({exc})") from exc


def _info(img: Image.Image) -> ImageInfo:
    try:
        orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        orientation = 1
    return ImageInfo(img.width, img.height, img.format or "UNKNOWN", img.mode, orientation)


def read_image_info(source: str | Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Format, size and mode from the header only; raises UnreadableImage like `load_image`."""
    data, path = _read_bytes(source)
    img = _open(data, path)
    info = _info(img)
    _check_header(info, path, max_pixels)
    return info


def _check_header(info: ImageInfo, path: str | None, max_pixels: int) -> None:
    if info.format not in SUPPORTED_FORMATS:
        raise UnreadableImage(path, f"unsupported image format {info.format}")
    if info.width < 1 or info.height < 1:
        raise UnreadableImage(path, f"invalid size {info.width}x{info.height}")
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise UnreadableImage(
            path,
            f"image too large: {info.width}x{info.height} = {pixels:,} pixels exceeds the limit of "
            f"{max_pixels:,} (decompression bomb guard)",
        )


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "I" or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        gray = ((arr - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite on white, as viewers show transparent areas, instead of black garbage.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def resize_image(arr: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an RGB array to `size` (int or (width, height)) with the loader's policy:
    area averaging when shrinking, bilinear when enlarging, untouched when already that size."""
    import cv2

    width, height = (size, size) if isinstance(size, int) else size
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    shrinking = arr.shape[1] > width or arr.shape[0] > height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(arr, (width, height), interpolation=interpolation)


def _decode_jpeg_fast(data: bytes, path: str | None, min_side: int) -> np.ndarray:
    try:
        return simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_height=min_side, min_width=min_side, strict=True
        )
    except ValueError as exc:
        raise UnreadableImage(path, f"corrupt or truncated JPEG ({exc})") from exc


def load_image(
    source: str | Path | bytes,
    size: int | tuple[int, int] | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file (or its bytes) to an (H, W, 3) RGB uint8 array.

    `size` (int or (width, height)) resizes the result; a JPEG is then decoded directly at the
    smallest DCT scale that still covers it. EXIF orientation is applied, palette/gray/CMYK/16-bit/
    alpha images are converted, animated images give their first frame. Raises `UnreadableImage`
    naming the file and the reason for empty, truncated, non-image, unsupported or oversized files.
    """
    data, path = _read_bytes(source)
    img = _open(data, path)
    info = _info(img)
    _check_header(info, path, max_pixels)

    fast_ok = info.format == "JPEG" and info.mode in ("RGB", "L") and info.orientation == 1
    if fast_ok:
        min_side = 0
        if size is not None:
            width, height = (size, size) if isinstance(size, int) else size
            min_side = max(width, height)
        arr = _decode_jpeg_fast(data, path, min_side)
    else:
        try:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            arr = _to_rgb(img)
        except UnreadableImage:
            raise
        except Exception as exc:
            raise UnreadableImage(path, f"corrupt or truncated {info.format} data ({exc})") from exc
    if size is not None:
        arr = resize_image(arr, size)
    return np.ascontiguousarray(arr)
