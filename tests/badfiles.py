"""A corpus of bad, odd and hostile image files, generated at test time (nothing is stored in the repo).

`make_bad_corpus(folder)` writes the files and returns {name: path}; `EXPECTED[name]` (through
`expected(name)`, which knows about running as root) says what every entry point must make of each:
a correct decode of the given displayed (height, width), or a per-file error whose reason contains
the given words. Entries the file system cannot hold (a non-UTF-8 name, a symlink, a FIFO) are left
out of the returned dict. `NOT_UPLOADABLE` are the entries a client cannot send as they are (special
files, and a file over the size limit that is only sparse on disk).
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from deepfake_detector.data.images import MAX_FILE_BYTES

NON_UTF8_NAME = b"non_utf8_\xff\xfe.jpg"  # invalid UTF-8 bytes: Python sees them as surrogate escapes
LONG_NAME = "long_" + "n" * 241 + ".jpg"  # 250 characters, under the usual 255-byte NAME_MAX
BOMB_SIDE = 20_000  # 400 million pixels declared: 1.2 GB as RGB, a few KiB on disk
WIDE = (100_000, 1)  # width, height
ROTATED_STORED = (80, 40)  # width, height as stored; EXIF orientation 6 shows it 40 wide x 80 high


@dataclass(frozen=True)
class Expected:
    """`readable`: decodes to an RGB image of `shape` (height, width, as displayed); else the error
    reason contains every word in `reason` (lower case)."""

    readable: bool
    reason: tuple[str, ...] = ()
    shape: tuple[int, int] | None = None


def _ok(height: int, width: int) -> Expected:
    return Expected(True, shape=(height, width))


def _error(*words: str) -> Expected:
    return Expected(False, reason=words)


EXPECTED: dict[str, Expected] = {
    "zero_byte": _error("empty"),
    "truncated_jpeg": _error("truncated"),
    "truncated_png": _error("truncated", "png"),
    "png_named_jpg": _ok(48, 64),
    "jpeg_named_png": _ok(48, 64),
    "html_named_jpg": _error("not an image", "text/html"),
    "text_named_jpg": _error("not an image", "text"),
    "decompression_bomb": _error("decompression bomb"),
    "one_pixel": _ok(1, 1),
    "very_wide": _ok(WIDE[1], WIDE[0]),
    "png_16bit": _ok(32, 48),
    "cmyk_jpeg": _ok(32, 32),
    "animated_gif": _ok(24, 24),
    "exif_rotated": _ok(ROTATED_STORED[0], ROTATED_STORED[1]),
    "symlink_loop": _error("symbolic link"),
    "dangling_symlink": _error("not found"),
    "no_permission": _error("permission denied"),
    "non_utf8_name": _ok(48, 64),
    "long_name": _ok(48, 64),
    "fifo_named_jpg": _error("named pipe", "not a regular file"),  # never opened: opening one blocks
    "link_to_dev_zero": _error("character device", "not a regular file"),  # endless if read
    "over_size_limit": _error("file too large", "limit"),  # sparse: MAX_FILE_BYTES + 1 bytes declared
    "cr_in_name": _ok(48, 64),  # a bare CR must not end a CSV row
    "lf_in_name": _ok(48, 64),
    "tab_first_name": _ok(48, 64),  # OWASP: a leading tab also starts a formula in some spreadsheets
    "formula_equals_name": _ok(48, 64),
    "formula_plus_name": _ok(48, 64),
    "formula_minus_name": _ok(48, 64),
    "formula_at_name": _ok(48, 64),
    "escape_sequence_name": _ok(48, 64),  # ANSI colour codes: raw in a terminal they restyle it
}
NOT_UPLOADABLE = frozenset({"fifo_named_jpg", "link_to_dev_zero", "over_size_limit"})
# Names a spreadsheet or a terminal would misread (the part before the ".jpg").
ODD_NAMES = {
    "cr_in_name": "carriage\rreturn",
    "lf_in_name": "line\nfeed",
    "tab_first_name": "\tstarts_with_tab",
    "formula_equals_name": '=HYPERLINK("http:example.com","x")',
    "formula_plus_name": "+1+2",
    "formula_minus_name": "-2+3",
    "formula_at_name": "@SUM(1+1)",
    "escape_sequence_name": "\x1b[31mred\x1b[0m\x1b]0;title\x07",
}

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def expected(name: str) -> Expected:
    """EXPECTED[name], except that root reads a chmod-000 file like any other (no permission check
    applies to it), so there `no_permission` is a correct decode; `test_bad_inputs` checks the
    refusal separately in a process that drops root."""
    if name == "no_permission" and RUNNING_AS_ROOT:
        return _ok(48, 64)
    return EXPECTED[name]


# --- pixel content -------------------------------------------------------------------------------


def gradient(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth, non-symmetric RGB image (JPEG-friendly; `seed` shifts the colours)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack(
        [
            (xx * 255 // max(1, width - 1) + 37 * seed) % 256,
            yy * 255 // max(1, height - 1),
            np.full_like(xx, (90 + 53 * seed) % 256),
        ],
        -1,
    ).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def good_jpeg(seed: int = 0, width: int = 64, height: int = 48) -> bytes:
    return encode(Image.fromarray(gradient(width, height, seed)), "JPEG", quality=90)


def rotated_pixels() -> np.ndarray:
    """Stored 80 wide x 40 high: left half red, right half blue. Shown with orientation 6 (rotate 90
    clockwise) it is 40 wide x 80 high with red on top and blue at the bottom."""
    width, height = ROTATED_STORED
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return pixels


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit side x side PNG, compressed row by row without ever holding the image."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    block = row * 1000
    body = b"".join(compressor.compress(block) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (24, 24), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(Image.fromarray(rotated_pixels()), "JPEG", quality=95, exif=exif)


@functools.cache
def _contents() -> dict[str, tuple[str, bytes]]:
    """name -> (file name, bytes) for every plain file of the corpus."""
    jpeg = encode(Image.fromarray(gradient(128, 96)), "JPEG", quality=90)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png = encode(Image.fromarray(noise), "PNG")
    sixteen = (np.arange(48, dtype=np.uint16)[None, :] * 1365).repeat(32, axis=0)
    wide = np.zeros((WIDE[1], WIDE[0], 3), dtype=np.uint8)
    wide[..., 0] = np.arange(WIDE[0]) % 256
    return {
        "zero_byte": ("zero_byte.jpg", b""),
        "truncated_jpeg": ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        "truncated_png": ("truncated.png", png[: len(png) // 2]),
        "png_named_jpg": ("png_named.jpg", encode(Image.fromarray(gradient(seed=1)), "PNG")),
        "jpeg_named_png": ("jpeg_named.png", good_jpeg(seed=2)),
        "html_named_jpg": (
            "html_page.jpg",
            b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>gone</body></html>\n",
        ),
        "text_named_jpg": ("notes.jpg", b"These are my notes, not a picture.\n" * 10),
        "decompression_bomb": ("bomb.png", bomb_png()),
        "one_pixel": ("one_pixel.png", encode(Image.new("RGB", (1, 1), (200, 30, 60)), "PNG")),
        "very_wide": ("very_wide.png", encode(Image.fromarray(wide), "PNG")),
        "png_16bit": ("gray16.png", encode(Image.fromarray(sixteen), "PNG")),
        "cmyk_jpeg": ("cmyk.jpg", encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)),
        "animated_gif": ("animated.gif", _animated_gif()),
        "exif_rotated": ("exif_rotated.jpg", _exif_rotated()),
        "no_permission": ("no_permission.jpg", good_jpeg(seed=3)),
        "long_name": (LONG_NAME, good_jpeg(seed=4)),
        **{name: (f"{stem}.jpg", good_jpeg(seed=6 + i)) for i, (name, stem) in enumerate(ODD_NAMES.items())},
    }


def make_bad_corpus(folder: str | Path) -> dict[str, Path]:
    """Write the corpus into `folder` (created); returns {name: path} (see EXPECTED for the outcomes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, (file_name, data) in _contents().items():
        path = folder / file_name
        path.write_bytes(data)
        paths[name] = path
    os.chmod(paths["no_permission"], 0)
    over = folder / "over_size_limit.jpg"
    with open(over, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing written, the size alone must refuse it
    paths["over_size_limit"] = over
    _make_special_files(folder, paths)

    try:
        loop = folder / "symlink_loop.jpg"
        os.symlink(loop.name, loop)  # points at itself
        paths["symlink_loop"] = loop
        dangling = folder / "dangling_symlink.jpg"
        os.symlink("no_such_target.jpg", dangling)
        paths["dangling_symlink"] = dangling
    except (OSError, NotImplementedError):
        pass  # no symlinks here (e.g. Windows without the privilege)

    try:
        raw = os.path.join(os.fsencode(folder), NON_UTF8_NAME)
        fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(encode(Image.fromarray(gradient(seed=5)), "JPEG", quality=90))
        paths["non_utf8_name"] = Path(os.fsdecode(raw))
    except (OSError, UnicodeError):
        pass  # a file system that only takes UTF-8 names
    return paths


def _make_special_files(folder: Path, paths: dict[str, Path]) -> None:
    """A FIFO named like a JPEG and a link to /dev/zero, where the system has them."""
    if hasattr(os, "mkfifo"):
        fifo = folder / "b_fifo.jpg"
        os.mkfifo(fifo)
        paths["fifo_named_jpg"] = fifo
    if os.path.exists("/dev/zero"):
        try:
            link = folder / "dev_zero.jpg"
            os.symlink("/dev/zero", link)
            paths["link_to_dev_zero"] = link
        except (OSError, NotImplementedError):
            pass


def write_good_images(folder: str | Path, n: int, *, seed: int = 0, prefix: str = "good") -> list[Path]:
    """n small valid square JPEGs (64x64, scored as face crops by `--faces auto`), each coloured apart."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"{prefix}_{i:03d}.jpg"
        path.write_bytes(good_jpeg(seed=seed + i, height=64))
        out.append(path)
    return out


def unlock(paths: dict[str, Path]) -> None:
    """Give the chmod-000 file its permissions back (so tmp_path clean-up and copies work)."""
    if "no_permission" in paths and paths["no_permission"].exists():
        os.chmod(paths["no_permission"], 0o644)
