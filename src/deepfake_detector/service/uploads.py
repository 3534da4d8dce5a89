"""Reading uploaded images into memory: a multipart form (streamed through python-multipart) or a raw body.

Nothing is written to disk (Starlette's own form parser spools files over 1 MB to a temporary
file, so it is not used), and the client's file name is only a label: it is cleaned and never
used as a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

RAW_IMAGE_TYPES = ("image/", "video/", "application/octet-stream")  # videos: /v1/predict/video
MAX_FILENAME_CHARS = 200
DEFAULT_FILENAME = "upload"
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
MAX_BOUNDARY_CHARS = 70  # RFC 2046: 1 to 70 characters, printable ASCII, not ending in a space
_BOUNDARY = re.compile(rb"[\x20-\x7e]{0,69}[\x21-\x7e]")


class UploadError(Exception):
    """A request whose body cannot be taken as image uploads; `status` is the HTTP code to answer."""

    def __init__(self, status: int, detail: str):
        self.status = status
        self.detail = detail
        super().__init__(detail)


@dataclass
class Upload:
    """One uploaded file, held in memory. `error` is set (with `status`) when it was refused unread."""

    filename: str
    content_type: str
    data: bytes = b""
    error: str = ""
    status: int = 200


def clean_filename(name: str | None) -> str:
    """A display label from a client-supplied file name: last path component, no control characters."""
    if not name:
        return DEFAULT_FILENAME
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSAFE_NAME_CHARS.sub("", base).strip()
    return base[:MAX_FILENAME_CHARS] or DEFAULT_FILENAME


async def read_uploads(
    request: Request, *, field: str, max_files: int, max_file_bytes: int, allow_raw: bool, what: str = "image"
) -> list[Upload]:
    """The files in a request: the multipart parts named `field`, or (allow_raw) the body itself.

    Raises UploadError: 415 for a content type that is neither multipart nor an image, 400 for a
    malformed multipart body, 413 for more than `max_files` files, 422 when no file was sent.
    A single file over `max_file_bytes` comes back with status 413 and an error instead of its bytes.
    """
    content_type = request.headers.get("content-type", "")
    media_type, params = parse_options_header(content_type)
    media = media_type.decode("latin-1").lower()
    if media == "multipart/form-data":
        boundary = check_boundary(params.get(b"boundary"))
        uploads = await _read_multipart(request, boundary, field, max_files, max_file_bytes, what)
        if not uploads:
            raise UploadError(422, f"no file in the form: send the {what} in the multipart field '{field}'")
        return uploads
    if allow_raw and (not media or media.startswith(RAW_IMAGE_TYPES)):
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
        name = clean_filename(request.headers.get("x-filename"))
        upload = Upload(name, media or "application/octet-stream", bytes(data))
        if len(upload.data) > max_file_bytes:
            return [_too_large(upload, max_file_bytes, what)]
        return [upload]
    accepted = f"multipart/form-data (field '{field}')" + (
        f", {what}/* or application/octet-stream" if allow_raw else ""
    )
    raise UploadError(415, f"unsupported content type {media or '(none)'!r}: send {accepted}")


def check_boundary(boundary: bytes | None) -> bytes:
    """The multipart boundary if RFC 2046 allows it; else UploadError 400 saying why."""
    if not boundary:
        raise UploadError(400, "multipart/form-data without a boundary")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise UploadError(
            400, f"multipart boundary too long: {len(boundary):,} characters, at most {MAX_BOUNDARY_CHARS}"
        )
    if not _BOUNDARY.fullmatch(boundary):
        raise UploadError(400, "invalid multipart boundary: only printable ASCII, not ending in a space")
    return boundary


class _FormReader:
    """python-multipart callbacks that keep the file parts named `field`, each in memory."""

    def __init__(self, field: str, max_files: int, max_file_bytes: int, what: str):
        self.field, self.max_files, self.max_file_bytes, self.what = field, max_files, max_file_bytes, what
        self.uploads: list[Upload] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.part: Upload | None = None
        self.buffer = bytearray()
        self.too_many = False
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        names = ("part_begin", "header_field", "header_value", "header_end", "headers_finished",
                 "part_data", "part_end", "end")  # fmt: skip
        return {f"on_{name}": getattr(self, f"on_{name}") for name in names}

    def on_part_begin(self) -> None:
        self.headers.clear()
        self.buffer.clear()
        self.part = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value.extend(data[start:end])

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        if options.get(b"name", b"").decode("utf-8", "replace") != self.field or b"filename" not in options:
            return  # other form fields are skipped, not stored
        if len(self.uploads) >= self.max_files:
            self.too_many = True
            return
        ctype, _ = parse_options_header(self.headers.get("content-type", b""))
        name = clean_filename(options[b"filename"].decode("utf-8", "replace"))
        self.part = Upload(name, ctype.decode("latin-1"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part is None or self.part.error:
            return
        if len(self.buffer) + (end - start) > self.max_file_bytes:
            _too_large(self.part, self.max_file_bytes, self.what)
            self.buffer.clear()
            return
        self.buffer.extend(data[start:end])

    def on_part_end(self) -> None:
        if self.part is None:
            return
        if not self.part.error:
            self.part.data = bytes(self.buffer)
        self.uploads.append(self.part)
        self.buffer.clear()

    def on_end(self) -> None:
        self.ended = True


async def _read_multipart(
    request: Request, boundary: bytes, field: str, max_files: int, max_file_bytes: int, what: str = "image"
) -> list[Upload]:
    form = _FormReader(field, max_files, max_file_bytes, what)
    try:
        parser = MultipartParser(boundary, callbacks=form.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
            if form.too_many:
                break
        parser.finalize()
    except FormParserError as exc:  # every python-multipart error, the boundary's included
        raise UploadError(400, f"malformed multipart body ({exc})") from exc
    if form.too_many:
        raise UploadError(413, f"too many files: at most {max_files} per request")
    if not form.ended:
        raise UploadError(400, "malformed multipart body (it ends before its closing boundary)")
    return form.uploads


def _too_large(upload: Upload, limit: int, what: str = "image") -> Upload:
    upload.data = b""
    upload.status = 413
    upload.error = f"file too large: the limit is {limit / (1024 * 1024):g} MB per {what}"
    return upload
