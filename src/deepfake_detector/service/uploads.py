"""Reading uploaded images into memory: a multipart form (streamed through python-multipart) or a raw body.

Nothing is written to disk (Starlette's own form parser spools files over 1 MB to a temporary
file, so it is not used), and the client's file name is only a label: it is cleaned and never
used as a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import Request

RAW_IMAGE_TYPES = ("image/", "video/", "application/octet-stream")  # videos: /v1/predict/video
MAX_FILENAME_CHARS = 200
DEFAULT_FILENAME = "upload"
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


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
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError(400, "multipart/form-data without a boundary")
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


async def _read_multipart(
    request: Request, boundary: bytes, field: str, max_files: int, max_file_bytes: int, what: str = "image"
) -> list[Upload]:
    uploads: list[Upload] = []
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[str, bytes] = {}
    part: Upload | None = None
    buffer = bytearray()
    too_many = False
    ended = False

    def on_part_begin() -> None:
        nonlocal part
        headers.clear()
        buffer.clear()
        part = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[header_field.decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal part, too_many
        _, options = parse_options_header(headers.get("content-disposition", b""))
        if options.get(b"name", b"").decode("utf-8", "replace") != field or b"filename" not in options:
            return  # other form fields are skipped, not stored
        if len(uploads) >= max_files:
            too_many = True
            return
        ctype, _ = parse_options_header(headers.get("content-type", b""))
        part = Upload(
            clean_filename(options[b"filename"].decode("utf-8", "replace")), ctype.decode("latin-1")
        )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part is None or part.error:
            return
        if len(buffer) + (end - start) > max_file_bytes:
            _too_large(part, max_file_bytes, what)
            buffer.clear()
            return
        buffer.extend(data[start:end])

    def on_part_end() -> None:
        if part is None:
            return
        if not part.error:
            part.data = bytes(buffer)
        uploads.append(part)
        buffer.clear()

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        callbacks={  # type: ignore[arg-type]
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if too_many:
                break
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(400, f"malformed multipart body ({exc})") from exc
    if too_many:
        raise UploadError(413, f"too many files: at most {max_files} per request")
    if not ended:
        raise UploadError(400, "malformed multipart body (it ends before its closing boundary)")
    return uploads


def _too_large(upload: Upload, limit: int, what: str = "image") -> Upload:
    upload.data = b""
    upload.status = 413
    upload.error = f"file too large: the limit is {limit / (1024 * 1024):g} MB per {what}"
    return upload
