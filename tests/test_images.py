"""The one image decoder: every bad-file kind gives UnreadableImage with a reason, every supported
kind decodes to RGB uint8 with the right orientation, size and colours."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from deepfake_detector.data.images import UnreadableImage, is_image_path, load_image, read_image_info


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth, non-symmetric RGB image (JPEG-friendly, orientation-revealing)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack(
        [xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), np.full_like(xx, 90)], -1
    ).astype(np.uint8)


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit PNG of width x height written row by row: a few KiB on disk, no big allocation."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    compressor = zlib.compressobj(1)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    body = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


# --- bad files -------------------------------------------------------------------------------


def reason_for(source) -> str:
    with pytest.raises(UnreadableImage) as info:
        load_image(source)
    return info.value.reason


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImage) as info:
        load_image(path)
    assert info.value.path == str(path)
    assert "empty" in info.value.reason
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    assert "not found" in reason_for(tmp_path / "nope.jpg")
    assert "directory" in reason_for(tmp_path)


@pytest.mark.parametrize("size", [None, 32])
def test_truncated_jpeg(tmp_path, size):
    data = encode(Image.fromarray(gradient(128, 96)), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImage) as info:
        load_image(path, size=size)
    assert "truncated" in info.value.reason


def test_truncated_exif_rotated_jpeg_takes_the_pillow_path_and_still_fails_cleanly(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(gradient(128, 96)), "JPEG", quality=90, exif=exif)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in reason_for(path)


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    assert "PNG" in reason_for(path)


@pytest.mark.parametrize(
    "content", [b"<!DOCTYPE html><html><body>404 Not Found</body></html>", b"just some text\n" * 20]
)
def test_text_or_html_named_jpg(tmp_path, content):
    path = tmp_path / "page.jpg"
    path.write_bytes(content)
    reason = reason_for(path)
    assert "not an image" in reason and "text" in reason


def test_decompression_bomb_png_is_refused_from_the_header(tmp_path):
    path = huge_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000  # tiny on disk, 400 million pixels when decoded
    reason = reason_for(path)
    assert "decompression bomb" in reason
    with pytest.raises(UnreadableImage):
        read_image_info(path)


def test_max_pixels_limit(tmp_path):
    data = encode(Image.fromarray(gradient(100, 100)), "PNG")
    assert load_image(data, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(UnreadableImage) as info:
        load_image(data, max_pixels=9_999)
    assert "100x100" in info.value.reason and "too large" in info.value.reason


def test_unsupported_format(tmp_path):
    path = tmp_path / "image.jpg"  # a PPM with a misleading name
    path.write_bytes(encode(Image.fromarray(gradient()), "PPM"))
    assert "unsupported image format PPM" in reason_for(path)


def test_bytes_source_names_bytes():
    with pytest.raises(UnreadableImage) as info:
        load_image(b"")
    assert info.value.path == "<bytes>"


# --- conversions -------------------------------------------------------------------------------


def test_rgb_png_round_trips_exactly():
    rgb = gradient()
    out = load_image(encode(Image.fromarray(rgb), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    np.testing.assert_array_equal(out, rgb)


def test_grayscale_becomes_three_equal_channels():
    gray = gradient()[..., 0]
    for fmt in ("PNG", "JPEG"):
        out = load_image(encode(Image.fromarray(gray, mode="L"), fmt))
        assert out.shape == (48, 64, 3)
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(gray, mode="L"), "PNG"))[..., 0], gray)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((10, 20, 4), dtype=np.uint8)
    rgba[:, :10] = (200, 10, 10, 255)  # opaque red left
    rgba[:, 10:] = (0, 0, 255, 0)  # fully transparent right
    out = load_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    assert out.shape == (10, 20, 3)
    assert (out[:, :10] == (200, 10, 10)).all()
    assert (out[:, 10:] == 255).all()


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(cmyk, "JPEG", quality=95)
    assert read_image_info(data).mode == "CMYK"
    out = load_image(data)
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - (255, 0, 0)).max() <= 8


def test_16_bit_png_is_scaled_to_8_bit():
    values = np.array([[0, 32896, 65535]], dtype=np.uint16).repeat(4, axis=0)
    data = encode(Image.fromarray(values), "PNG")
    assert read_image_info(data).mode.startswith("I")
    out = load_image(data)
    assert out.shape == (4, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255])


@pytest.mark.parametrize("size", [None, 24])
def test_exif_orientation_is_applied(size):
    # 40 wide x 20 high: left half red, right half blue. Orientation 6 = "rotate 90 clockwise to view",
    # so the displayed image is 20 wide x 40 high with red on top and blue at the bottom.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif)
    assert read_image_info(data).orientation == 6
    out = load_image(data, size=size)
    height, width = out.shape[:2]
    if size is None:
        assert (height, width) == (40, 20)
    else:
        assert (height, width) == (size, size)
    top, bottom = out[: height // 2 - 2].reshape(-1, 3).mean(0), out[height // 2 + 2 :].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50, top
    assert bottom[2] > 200 and bottom[0] < 50, bottom


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(buffer.getvalue())
    assert out.shape == (16, 16, 3)
    assert (out == (255, 0, 0)).all()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_size_option_for_every_format(fmt):
    data = encode(Image.fromarray(gradient(200, 100)), fmt)
    assert load_image(data).shape == (100, 200, 3)
    assert load_image(data, size=64).shape == (64, 64, 3)
    assert load_image(data, size=(50, 30)).shape == (30, 50, 3)
    assert load_image(data, size=(400, 200)).shape == (200, 400, 3)  # enlarging works too


def test_reduced_size_jpeg_decode_matches_full_decode_then_resize():
    data = encode(Image.fromarray(gradient(256, 256)), "JPEG", quality=95)
    small = load_image(data, size=64).astype(int)
    reference = np.asarray(Image.fromarray(load_image(data)).resize((64, 64), Image.BILINEAR)).astype(int)
    assert np.abs(small - reference).mean() < 3


def test_file_path_and_bytes_agree(tmp_path):
    data = encode(Image.fromarray(gradient()), "JPEG", quality=80)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_image(path), load_image(data))
    np.testing.assert_array_equal(load_image(str(path), size=32), load_image(data, size=32))


def test_read_image_info_reads_header_only():
    info = read_image_info(encode(Image.fromarray(gradient(64, 48)), "PNG"))
    assert (info.width, info.height, info.format, info.mode, info.orientation) == (64, 48, "PNG", "RGB", 1)


def test_is_image_path():
    assert is_image_path("a/B.JPG") and is_image_path("x.webp") and is_image_path(Path("y.png"))
    assert not is_image_path("notes.txt") and not is_image_path("archive.jpg.zip")


# --- any bytes: an image or UnreadableImage, nothing else ----------------------------------------

_VALID = [
    encode(Image.fromarray(gradient(24, 16)), "JPEG", quality=85),
    encode(Image.fromarray(gradient(24, 16)), "PNG"),
    encode(Image.fromarray(gradient(24, 16)), "GIF"),
    encode(Image.fromarray(gradient(24, 16)), "WEBP"),
]
_PREFIXES = [
    b"",
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"<html>",
]


def _decodes_or_refuses(data: bytes) -> None:
    try:
        out = load_image(data, max_pixels=4_000_000)
    except UnreadableImage as exc:
        assert exc.reason
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] >= 1 and out.shape[1] >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_PREFIXES), tail=st.binary(max_size=512))
def test_random_bytes_decode_or_raise_unreadable(prefix, tail):
    _decodes_or_refuses(prefix + tail)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(_VALID),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.floats(0.05, 1.0),
)
def test_corrupted_images_decode_or_raise_unreadable(base, edits, cut):
    data = bytearray(base[: max(1, int(len(base) * cut))])
    for position, value in edits:
        data[int(position * len(data))] = value
    _decodes_or_refuses(bytes(data))
