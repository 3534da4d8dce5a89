"""Structured logs: one JSON object per line, one access line per request with its id and latency.

The request id is the client's `X-Request-ID` when it is a short plain token, otherwise a new one;
it is returned in the `X-Request-ID` response header so a client can quote it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from deepfake_detector.service.limits import ASGIApp, Message, Receive, Scope, Send, send_json

ACCESS_LOGGER = "deepfake_detector.service.access"
SERVICE_LOGGER = "deepfake_detector.service"
REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CLIENT_CLOSED_REQUEST = 499  # logged (never sent) when the client went away before the answer


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...fields}`; fields come from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """Send the service's logs to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger(SERVICE_LOGGER)
    logger.setLevel(level.upper())
    if not any(getattr(h, "_deepfake_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._deepfake_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's own messages (start-up, errors) as JSON lines too; its access log is replaced by ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


class RequestLogMiddleware:
    """Outermost layer: gives each request an id, logs one JSON line when it ends, and turns an
    unexpected exception into a JSON 500 that still carries the id (instead of a bare traceback)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = CLIENT_CLOSED_REQUEST
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # a bug must cost one request, not the worker
            error = exc
            if not response_started:
                await send_json(send_with_id, 500, f"internal error (request id {request_id})")
        finally:
            fields = {
                "request_id": request_id,
                "method": scope.get("method", ""),
                "path": scope.get("path", ""),
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 2),
                "client": (scope.get("client") or ("", 0))[0],
            }
            fields.update(scope["state"].get("log_fields", {}))
            if error is not None:
                self.log.error("request failed", extra={"fields": fields}, exc_info=error)
            else:
                self.log.info("request", extra={"fields": fields})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex
