"""The FastAPI application: `create_app(...)` for tests and embedding, `app_from_env()` for uvicorn workers.

The model is loaded once, in the lifespan start-up, and shared by every request of the process;
inference runs on a bounded thread pool, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from deepfake_detector import __version__
from deepfake_detector.service.limits import BodyLimitMiddleware, ServiceLimits
from deepfake_detector.service.logging import SERVICE_LOGGER, RequestLogMiddleware, configure_logging
from deepfake_detector.service.pool import InferencePool
from deepfake_detector.service.routes import ServiceState, router
from deepfake_detector.service.video_routes import router as video_router

CONFIG_ENV = "DEEPFAKE_DETECTOR_SERVE_CONFIG"  # JSON of create_app's arguments, for `serve --workers N`
PAGE_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
# The page loads only its own script and style; images are blob: previews and data: heatmaps.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

log = logging.getLogger(SERVICE_LOGGER)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def create_app(
    model: str = "default",
    engine: str = "auto",
    *,
    max_upload_mb: float = 20.0,
    max_pixels: int = 40_000_000,
    queue_size: int = 16,
    timeout_s: float = 30.0,
    max_batch_files: int = 16,
    max_batch_mb: float | None = None,
    upload_timeout_s: float = 30.0,
    threads: int | None = None,
    log_level: str = "info",
    max_video_mb: float = 50.0,
    max_video_s: float = 60.0,
    threshold: float | None = None,
    uncertain_band: float | None = None,
) -> FastAPI:
    """The service for one model. Nothing is loaded until the app starts (its lifespan).
    `threshold` / `uncertain_band` replace the model's own (Detector.with_rule)."""
    rule = {"threshold": threshold, "uncertain_band": uncertain_band}
    limits = ServiceLimits(
        max_upload_mb=max_upload_mb,
        max_batch_files=max_batch_files,
        max_batch_mb=max_batch_mb if max_batch_mb is not None else max_upload_mb * 4,
        max_pixels=max_pixels,
        queue_size=queue_size,
        timeout_s=timeout_s,
        upload_timeout_s=upload_timeout_s,
        threads=threads or default_threads(),
        max_video_mb=max_video_mb,
        max_video_s=max_video_s,
    )
    configure_logging(log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = await run_in_threadpool(_load_service, model, engine, limits, rule)
        if app.state.service.detector.engine_name == "torch":
            # Ready now; Grad-CAM (seconds to import) is built in the background for ?heatmap=true.
            # An ONNX server does not do this: it would load PyTorch (hundreds of MB) before anyone asks.
            threading.Thread(target=app.state.service.scorer.prepare_explainer, daemon=True).start()
        try:
            yield
        finally:
            app.state.service.pool.shutdown()
            app.state.service = None

    app = FastAPI(
        title="deepfake-detector",
        version=__version__,
        summary="Tell real face images from deepfakes.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = None
    app.include_router(router)
    app.include_router(video_router)
    _add_page(app)
    _add_docs(app)
    # Starlette wraps in reverse order: the request log is the outermost layer, then the body limit.
    app.add_middleware(BodyLimitMiddleware, limits=limits)
    app.add_middleware(RequestLogMiddleware)
    return app


def app_from_env() -> FastAPI:
    """What each uvicorn worker builds: create_app with the arguments `serve` put in the environment."""
    config: dict[str, Any] = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    return create_app(**config)


def _load_service(
    model: str, engine: str, limits: ServiceLimits, rule: dict[str, float | None] | None = None
) -> ServiceState:
    from deepfake_detector.inference.detector import Detector
    from deepfake_detector.service.scoring import Scorer

    started = time.perf_counter()
    detector = Detector.load(model, engine=engine, **(rule or {}))  # type: ignore[arg-type]
    scorer = Scorer(detector, limits.max_pixels)
    try:
        scorer.warm_up()
    except Exception as exc:  # e.g. no face detector installed: face crops still work
        log.warning("warm-up incomplete", extra={"fields": {"reason": str(exc)}})
    spec = detector.spec
    log.info(
        "model loaded",
        extra={
            "fields": {
                "model": str(model),
                "name": spec.name,
                "architecture": spec.architecture,
                "engine": detector.engine_name,
                "threshold": spec.threshold,
                "load_ms": round((time.perf_counter() - started) * 1000.0, 1),
                "threads": limits.threads,
                "queue_size": limits.queue_size,
            }
        },
    )
    pool = InferencePool(limits.threads, limits.queue_size, limits.timeout_s)
    return ServiceState(detector=detector, scorer=scorer, pool=pool, limits=limits)


def _add_page(app: FastAPI) -> None:
    """The web page at / and its two assets, served from memory (no client path reaches the disk)."""
    static = resources.files("deepfake_detector.service") / "static"
    page = (static / "index.html").read_bytes()
    assets = {name: ((static / name).read_bytes(), media) for name, media in PAGE_ASSETS.items()}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "not found")
        body, media = assets[name]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the assets bundled in `fastapi-offline` (works offline);
    without that package, FastAPI's default page, which loads Swagger UI from a CDN."""
    try:
        bundled = resources.files("fastapi_offline") / "static"
        assets = {name: ((bundled / name).read_bytes(), media) for name, media in DOCS_ASSETS.items()}
    except (ModuleNotFoundError, FileNotFoundError):
        assets = {}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not assets:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="deepfake-detector API")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="deepfake-detector API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/docs-assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "not found")
        body, media = assets[name]
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=86400"})
