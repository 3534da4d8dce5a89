"""Request limits: the settings, and the ASGI middleware that caps upload size and upload time.

The size cap is enforced before the app sees the body: a declared Content-Length over the limit
is refused at once with 413, and a body without one (chunked) is counted as it streams in and
cut off at the limit, so a 200 MB upload never gets read, let alone buffered. A body that trickles
in (slow-loris) is cut off with 408 when the upload deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect

from deepfake_detector.inference.engines import max_threads

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MB = 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file itself
BATCH_PATH = "/v1/predict/batch"
VIDEO_PATH = "/v1/predict/video"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may cost the server."""

    max_upload_mb: float = 20.0  # one image
    max_batch_files: int = 16
    max_batch_mb: float = 64.0  # a whole batch request
    max_pixels: int = 40_000_000  # decoded size guard (about 8000 x 5000)
    queue_size: int = 16  # inference jobs admitted at once (running + waiting); more get 503
    timeout_s: float = 30.0  # queue wait + inference for one request; past it 504
    upload_timeout_s: float = 30.0  # time to receive a request body; past it 408
    threads: int = 2  # inference threads
    max_video_mb: float = 50.0  # one video upload
    max_video_s: float = 60.0  # longest video accepted (422 past it)
    video_frames: int = 32  # frames sampled per video unless the request asks for fewer/more
    max_video_frames: int = 64  # most frames a request may ask for

    def __post_init__(self) -> None:
        checks = {
            "max_upload_mb": self.max_upload_mb > 0,
            "max_batch_files": self.max_batch_files >= 1,
            "max_batch_mb": self.max_batch_mb > 0,
            "max_pixels": self.max_pixels >= 1,
            "queue_size": self.queue_size >= 1,
            "timeout_s": self.timeout_s > 0,
            "upload_timeout_s": self.upload_timeout_s > 0,
            "threads": 1 <= self.threads <= max_threads(),  # 4 per core at most
            "max_video_mb": self.max_video_mb > 0,
            "max_video_s": self.max_video_s > 0,
            "video_frames": 1 <= self.video_frames <= self.max_video_frames,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid service limits: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_batch_bytes(self) -> int:
        return int(self.max_batch_mb * MB)

    @property
    def max_video_bytes(self) -> int:
        return int(self.max_video_mb * MB)

    def body_limit(self, path: str) -> int:
        """Largest request body accepted on `path` (the file plus multipart framing)."""
        if path.rstrip("/") == BATCH_PATH:
            return self.max_batch_bytes + MULTIPART_OVERHEAD
        if path.rstrip("/") == VIDEO_PATH:
            return self.max_video_bytes + MULTIPART_OVERHEAD
        return self.max_upload_bytes + MULTIPART_OVERHEAD

    def public(self) -> dict[str, Any]:
        """The limits a client may want to know (shown by /v1/model and used by the web page)."""
        return {
            "max_upload_mb": self.max_upload_mb,
            "max_batch_files": self.max_batch_files,
            "max_batch_mb": self.max_batch_mb,
            "max_pixels": self.max_pixels,
            "timeout_s": self.timeout_s,
            "max_video_mb": self.max_video_mb,
            "max_video_s": self.max_video_s,
            "video_frames": self.video_frames,
        }


class BodyTooLarge(Exception):
    """Raised from the wrapped `receive` once a streamed body passes the limit."""


class BodyTimeout(Exception):
    """Raised from the wrapped `receive` when the body has not arrived by the upload deadline."""


class BodyLimitMiddleware:
    """Caps request bodies by size (413) and by upload time (408) without reading past the cap."""

    def __init__(self, app: ASGIApp, limits: ServiceLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.body_limit(scope["path"])
        declared = _content_length(scope)
        if declared == -1:
            await send_json(send, 400, "invalid Content-Length header")
            return
        if declared is not None and declared > limit:
            await send_json(send, 413, _too_large(declared, limit))
            return

        received = 0
        body_done = False
        deadline = time.monotonic() + self.limits.upload_timeout_s
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline then
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except asyncio.TimeoutError:
                raise BodyTimeout() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await send_json(send, 413, _too_large(None, limit))
        except BodyTimeout:
            if not response_started:
                await send_json(
                    send,
                    408,
                    f"request body not received within {self.limits.upload_timeout_s:g} s (upload too slow)",
                )
        except ClientDisconnect:
            scope.setdefault("state", {})["client_disconnected"] = True  # nobody left to answer


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when absent, -1 when malformed."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


def _too_large(declared: int | None, limit: int) -> str:
    size = f" ({declared / MB:.1f} MB)" if declared is not None else ""
    return f"request body too large{size}: the limit is {math.floor(limit / MB * 10) / 10:g} MB"


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A complete JSON error response `{"detail": ...}` sent straight over ASGI."""
    body = json.dumps({"detail": detail}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body was not read, so this connection cannot be reused
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
