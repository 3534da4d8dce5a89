"""Property-based fuzzing (hypothesis) of the image loader and of the HTTP upload path.

Loader: random bytes and mutated real JPEGs (dfdc Test) either decode to a correct RGB uint8 image
or raise UnreadableImage, never anything else. HTTP: the same inputs posted to /v1/predict get a 200
with a prediction or a 4xx with a JSON error, never a 5xx; so do fuzzed headers (content type, any
multipart boundary up to 5,000 characters, duplicated and malformed headers) and fuzzed multipart
structure (missing, repeated and broken parts and part headers, cut bodies) on every upload endpoint.

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
    """200 with a prediction (a batch: a result or an error per file; a video: its tracks), or a 4xx
    with a JSON error naming the reason; never a 5xx."""
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 200 and "results" in body:
        assert body["count"] == len(body["results"]) >= 1
        assert all((item["status"] == 200) == (item["error"] is None) for item in body["results"])
    elif response.status_code == 200 and "video" in body:  # FFmpeg found frames in it (e.g. a JPEG)
        assert body["label"] in ("real", "fake", "uncertain", "") and isinstance(body["tracks"], list)
    elif response.status_code == 200:
        assert body["label"] in ("real", "fake", "uncertain", "") and body["image"]["width"] >= 1
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


# --- headers and multipart structure ---------------------------------------------------------------

UPLOAD_PATHS = ("/v1/predict", "/v1/predict/batch", "/v1/predict/video")
FIELD = {"/v1/predict": b"file", "/v1/predict/batch": b"files", "/v1/predict/video": b"file"}
GOOD_JPEG = (REAL_JPEGS or [b""])[0][:20_000] or b"\xff\xd8\xff"  # cut: small enough for every limit
HEADER_TEXT = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
BOUNDARY = st.one_of(
    st.from_regex(rb"[0-9A-Za-z'()+_,\-./:=?]{1,70}", fullmatch=True),  # what RFC 2046 allows
    st.binary(min_size=0, max_size=80),
    st.integers(60, 5_000).map(lambda n: b"b" * n),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=100).map(
        lambda t: t.encode("latin-1")
    ),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def form(boundary: bytes, parts: list[tuple[list[bytes], bytes]], *, close: bool = True) -> bytes:
    """A multipart body: each part its header lines and data, then (close) the closing boundary."""
    body = b"".join(
        b"--" + boundary + b"\r\n" + b"\r\n".join(h) + b"\r\n\r\n" + d + b"\r\n" for h, d in parts
    )
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def file_part(field: bytes, name: bytes = b"x.jpg") -> tuple[list[bytes], bytes]:
    return [b'Content-Disposition: form-data; name="' + field + b'"; filename="' + name + b'"',
            b"Content-Type: image/jpeg"], GOOD_JPEG  # fmt: skip


def test_a_5000_character_boundary_is_a_400_not_a_500(client) -> None:
    boundary = b"b" * 5_000
    for path in UPLOAD_PATHS:
        headers = {"content-type": b"multipart/form-data; boundary=" + boundary}
        response = client.post(path, content=form(boundary, [file_part(FIELD[path])]), headers=headers)
        assert response.status_code == 400, (path, response.status_code, response.text[:300])
        assert "boundary too long: 5,000 characters, at most 70" in response.json()["detail"]


@FUZZ
@given(path=st.sampled_from(UPLOAD_PATHS), boundary=BOUNDARY, quoted=st.booleans())
def test_any_multipart_boundary_gets_an_answer_not_a_server_error(client, path, boundary, quoted) -> None:
    value = b'"' + boundary + b'"' if quoted else boundary
    headers = {"content-type": b"multipart/form-data; boundary=" + value}
    response = client.post(path, content=form(boundary, [file_part(FIELD[path])]), headers=headers)
    answered_cleanly(response)
    if len(boundary) > 70:
        assert response.status_code == 400


CONTENT_TYPES = st.one_of(
    st.sampled_from([b"", b"multipart/form-data", b"multipart/form-data; boundary=", b"multipart/mixed; boundary=x",
                     b"image/jpeg", b"video/mp4", b"application/octet-stream", b"text/plain",
                     b"MULTIPART/FORM-DATA; BOUNDARY=x",
                     b"multipart/form-data; boundary=x; boundary=y", b"multipart/form-data; charset=utf-8"]),
    HEADER_TEXT,
)  # fmt: skip
EXTRA_HEADERS = st.lists(
    st.tuples(st.sampled_from([b"content-type", b"content-length", b"x-filename", b"content-disposition",
                               b"transfer-encoding", b"content-encoding", b"x-other"]), HEADER_TEXT),
    max_size=4,
)  # fmt: skip


@FUZZ
@given(path=st.sampled_from(UPLOAD_PATHS), content_type=CONTENT_TYPES, extra=EXTRA_HEADERS, raw=st.booleans())
def test_fuzzed_headers_get_an_answer_not_a_server_error(client, path, content_type, extra, raw) -> None:
    """Any content type, duplicated or malformed headers (a second content type, a bad length...)."""
    body = GOOD_JPEG if raw else form(b"x", [file_part(FIELD[path])])
    headers = [(b"content-type", content_type), *extra]
    try:
        response = client.post(path, content=body, headers=headers)
    except (ValueError, UnicodeError) as exc:  # httpx itself refused to send the header (not the server)
        event(f"client refused: {type(exc).__name__}")
        return
    answered_cleanly(response)


PART_HEADERS = st.lists(
    st.one_of(
        st.sampled_from([b'Content-Disposition: form-data; name="file"; filename="a.jpg"',
                         b'Content-Disposition: form-data; name="files"; filename="b.jpg"',
                         b'Content-Disposition: form-data; name="file"', b"Content-Disposition: form-data",
                         b'Content-Disposition: form-data; name="file"; filename=""', b"Content-Disposition:",
                         b"Content-Type: image/jpeg", b"Content-Type:", b"Content-Type: ;;;", b"no colon here",
                         b": empty name", b"Content-Transfer-Encoding: base64"]),
        HEADER_TEXT.map(lambda t: b'Content-Disposition: form-data; name="file"; filename="' + t + b'"'),
        HEADER_TEXT,
    ),
    max_size=5,
)  # fmt: skip
PART_DATA = st.one_of(st.just(GOOD_JPEG), st.just(b""), st.binary(max_size=512))
PART = st.one_of(
    st.sampled_from([file_part(b"file"), file_part(b"files")]), st.tuples(PART_HEADERS, PART_DATA)
)
PARTS = st.lists(PART, max_size=5)
WHOLE_MOSTLY = st.one_of(st.just(1.0), st.just(1.0), CUT)


@FUZZ
@given(path=st.sampled_from(UPLOAD_PATHS), parts=PARTS, close=st.sampled_from([True, True, False]), cut=WHOLE_MOSTLY,
       preamble=st.sampled_from([b"", b"preamble\r\n", b"--x\r\n", b"\r\n"]))  # fmt: skip
def test_fuzzed_multipart_structure_gets_an_answer_not_a_server_error(
    client, path, parts, close, cut, preamble
):
    """Missing, repeated and broken parts; part headers missing, duplicated or malformed; cut bodies."""
    body = preamble + form(b"x", parts, close=close)
    body = body[: max(1, int(len(body) * cut))]
    headers = {"content-type": "multipart/form-data; boundary=x"}
    answered_cleanly(client.post(path, content=body, headers=headers))
