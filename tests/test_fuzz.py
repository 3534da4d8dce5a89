"""Property-based fuzzing (hypothesis) of the image loader and of the HTTP upload path.

Loader: random bytes and mutated real JPEGs (dfdc Test) either decode to a correct RGB uint8 image
or raise UnreadableImage, never anything else. HTTP: the same inputs posted to /v1/predict get a 200
with a prediction or a 4xx with a JSON error, never a 5xx.

Bounded by default (FUZZ_EXAMPLES, default 60, examples per property); for a long run:
    FUZZ_EXAMPLES=5000 .venv/bin/pytest -q tests/test_fuzz.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from inference_helpers import make_bundle
from service_helpers import DFDC_TEST

from deepfake_detector.data.images import UnreadableImage, load_image, read_image_info

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_PIXELS = 4_000_000  # keeps a mutated header that declares a big image from costing seconds
ROTATED = frozenset({5, 6, 7, 8})


def _real_jpegs(n: int = 3) -> list[bytes]:
    found: list[bytes] = []
    for cls in ("Real", "Fake"):
        folder = DFDC_TEST / cls
        if folder.is_dir():
            found += [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:n]]
    return found


REAL_JPEGS = _real_jpegs()
needs_real_jpegs = pytest.mark.skipif(
    not REAL_JPEGS, reason=f"shared dfdc test images not found in {DFDC_TEST}"
)
HEADER_BYTES = 700  # markers, quantisation and Huffman tables, SOF sizes: where mutations bite most

# A mutation: (kind, where as a fraction, in the header or anywhere, value).
MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete"]),
    st.floats(0, 1, exclude_max=True),
    st.booleans(),
    st.integers(0, 255),
)

CUT = st.one_of(st.just(1.0), st.floats(0.02, 1.0))  # whole files half the time: truncation always fails


def mutate(base: bytes, mutations: list[tuple[str, float, bool, int]], cut: float) -> bytes:
    data = bytearray(base)
    for kind, where, in_header, value in mutations:
        span = min(len(data), HEADER_BYTES) if in_header else len(data)
        if not span:
            break
        i = int(where * span)
        if kind == "flip":
            data[i] ^= 1 << (value % 8)
        elif kind == "set":
            data[i] = value
        elif kind == "insert":
            data[i:i] = bytes([value])
        else:
            del data[i]
    return bytes(data[: max(1, int(len(data) * cut))])


def decodes_or_refuses(data: bytes) -> None:
    """The loader contract: a correct image, or UnreadableImage with a reason; nothing else."""
    try:
        info = read_image_info(data, max_pixels=MAX_PIXELS)
    except UnreadableImage as exc:
        assert exc.reason and exc.path == "<bytes>"
        info = None
    try:
        image = load_image(data, max_pixels=MAX_PIXELS)
    except UnreadableImage as exc:
        assert exc.reason
        event("refused")
    else:
        event("decoded")
        assert info is not None, "load_image read what read_image_info refused"
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.flags.c_contiguous
        height, width = (
            (info.width, info.height) if info.orientation in ROTATED else (info.height, info.width)
        )
        assert image.shape == (height, width, 3)
    try:
        small = load_image(data, size=48, max_pixels=MAX_PIXELS)  # the DCT-scaled JPEG path
    except UnreadableImage as exc:
        assert exc.reason
    else:
        assert small.shape == (48, 48, 3) and small.dtype == np.uint8


# --- the loader ------------------------------------------------------------------------------------

PREFIXES = [b"", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\xff\xd8\xff\xdb", b"\x89PNG\r\n\x1a\n", b"GIF89a",
            b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 "]  # fmt: skip


@FUZZ
@given(prefix=st.sampled_from(PREFIXES), tail=st.binary(max_size=2048))
def test_random_bytes_are_an_image_or_unreadable(prefix: bytes, tail: bytes) -> None:
    decodes_or_refuses(prefix + tail)


@needs_real_jpegs
@FUZZ
@given(
    base=st.sampled_from(REAL_JPEGS or [b""]),
    mutations=st.lists(MUTATION, min_size=1, max_size=6),
    cut=CUT,
)
def test_mutated_real_jpegs_are_an_image_or_unreadable(base: bytes, mutations, cut: float) -> None:
    decodes_or_refuses(mutate(base, mutations, cut))


@needs_real_jpegs
@FUZZ
@given(base=st.sampled_from(REAL_JPEGS or [b""]), width=st.integers(0, 65535), height=st.integers(0, 65535))
def test_jpeg_header_declaring_any_size_is_decoded_or_refused(base: bytes, width: int, height: int) -> None:
    """The SOF marker's size rewritten: a bomb is refused from the header, a mismatch is an error."""
    data = bytearray(base)
    sof = next((i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2)), None)
    assert sof is not None
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    decodes_or_refuses(bytes(data))
    if width * height > MAX_PIXELS:
        with pytest.raises(UnreadableImage, match="too large|decompression bomb"):
            read_image_info(bytes(data), max_pixels=MAX_PIXELS)


def test_a_real_jpeg_file_path_gives_the_same_pixels_as_its_bytes(tmp_path: Path) -> None:
    if not REAL_JPEGS:
        pytest.skip(f"shared dfdc test images not found in {DFDC_TEST}")
    path = tmp_path / "x.jpg"
    path.write_bytes(REAL_JPEGS[0])
    np.testing.assert_array_equal(load_image(path), load_image(REAL_JPEGS[0]))


# --- the HTTP upload path --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from fastapi.testclient import TestClient

    from deepfake_detector.service import create_app

    model = make_bundle(tmp_path_factory.mktemp("fuzz-model"), img_size=64)
    app = create_app(str(model), max_upload_mb=1.0, max_pixels=MAX_PIXELS, timeout_s=600)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def answered_cleanly(response) -> None:
    """200 with a prediction, or a 4xx with a JSON error naming the reason; never a 5xx."""
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 200:
        assert body["label"] in ("real", "fake", "") and body["image"]["width"] >= 1
        assert body["label"] or body["note"] == "no face found"
    else:
        assert (
            400 <= response.status_code < 500 and isinstance(body["detail"], (str, list)) and body["detail"]
        )


@FUZZ
@given(prefix=st.sampled_from(PREFIXES), tail=st.binary(max_size=2048))
def test_random_bytes_uploaded_get_an_answer_not_a_server_error(client, prefix: bytes, tail: bytes) -> None:
    data = prefix + tail
    answered_cleanly(client.post("/v1/predict", content=data, headers={"content-type": "image/jpeg"}))


@needs_real_jpegs
@FUZZ
@given(
    base=st.sampled_from(REAL_JPEGS or [b""]),
    mutations=st.lists(MUTATION, min_size=1, max_size=6),
    cut=CUT,
    name=st.text(max_size=300),
)
def test_mutated_jpegs_uploaded_get_an_answer_not_a_server_error(client, base, mutations, cut, name) -> None:
    files = {"file": (name or "x.jpg", mutate(base, mutations, cut), "image/jpeg")}
    response = client.post("/v1/predict", files=files)
    answered_cleanly(response)
    if response.status_code == 422:
        assert response.json()["detail"].split(": ", 1)[1]  # "<file name>: <reason>"


@FUZZ
@given(body=st.binary(max_size=1024), boundary=st.sampled_from(["b0undary", "x", "a" * 70]))
def test_malformed_multipart_bodies_get_a_4xx(client, body: bytes, boundary: str) -> None:
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    answered_cleanly(client.post("/v1/predict", content=f"--{boundary}\r\n".encode() + body, headers=headers))
    answered_cleanly(client.post("/v1/predict/batch", content=body, headers=headers))
