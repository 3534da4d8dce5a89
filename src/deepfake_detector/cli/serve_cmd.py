"""`deepfake-detector serve`: the HTTP API and web page (FastAPI on uvicorn)."""

from __future__ import annotations

import json
import os

import typer

from deepfake_detector.cli.app import app, fail


@app.command()
def serve(
    model: str = typer.Option("default", "--model", "-m", help="Run folder, model file or 'default'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Server processes, each with its own model copy."
    ),
    engine: str = typer.Option(
        "auto", "--engine", help="auto (ONNX Runtime when model.onnx exists, else PyTorch), torch or onnx."
    ),
    max_upload_mb: float = typer.Option(
        20.0, "--max-upload-mb", min=0.001, help="Largest image accepted (413)."
    ),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest decoded image (422)."),
    max_video_mb: float = typer.Option(
        50.0, "--max-video-mb", min=0.001, help="Largest video accepted (413)."
    ),
    max_video_s: float = typer.Option(60.0, "--max-video-s", min=0.1, help="Longest video accepted (422)."),
    queue_size: int = typer.Option(
        16,
        "--queue-size",
        min=1,
        help="Inference jobs admitted at once per process; more get 503 + Retry-After.",
    ),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Seconds per request before 504."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Inference threads per process (cores)."
    ),
    max_batch_files: int = typer.Option(16, "--max-batch-files", min=1, help="Files per batch request."),
    upload_timeout: float = typer.Option(
        30.0, "--upload-timeout", min=0.001, help="Seconds to receive a request body before 408."
    ),
    keep_alive: float = typer.Option(
        30.0,
        "--keep-alive",
        min=1.0,
        help="Seconds an idle connection is kept open; keep it above the idle timeout of clients and proxies.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve the detector: a web page at / and a REST API (POST /v1/predict, /v1/predict/batch,
    POST /v1/predict/video, GET /v1/model, /healthz, /readyz; OpenAPI at /docs). Logs are JSON lines
    on stderr.

    Example: deepfake-detector serve --model runs/mobilenet --port 8000
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise fail("serving needs the [serve] extra: pip install 'deepfake-detector[serve]'") from exc
    from deepfake_detector.locate import ModelNotFound, model_dir
    from deepfake_detector.service.app import CONFIG_ENV
    from deepfake_detector.service.limits import ServiceLimits
    from deepfake_detector.service.logging import uvicorn_log_config

    if engine not in ("auto", "torch", "onnx"):
        raise fail(f"--engine must be auto, torch or onnx, got {engine!r}")
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise fail(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    try:
        model_dir(model)  # a wrong --model fails here, before any worker starts
    except ModelNotFound as exc:
        raise fail(str(exc)) from exc
    config = {
        "model": model,
        "engine": engine,
        "max_upload_mb": max_upload_mb,
        "max_pixels": max_pixels,
        "max_video_mb": max_video_mb,
        "max_video_s": max_video_s,
        "queue_size": queue_size,
        "timeout_s": timeout,
        "threads": threads,
        "max_batch_files": max_batch_files,
        "upload_timeout_s": upload_timeout,
        "log_level": log_level.lower(),
    }
    try:
        ServiceLimits(
            max_upload_mb=max_upload_mb, max_pixels=max_pixels, queue_size=queue_size, timeout_s=timeout
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    # Worker processes rebuild the app from this (uvicorn needs an import string for --workers > 1).
    os.environ[CONFIG_ENV] = json.dumps(config)
    uvicorn.run(
        "deepfake_detector.service.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(log_level),
        access_log=False,
        # Connections beyond this get 503 from uvicorn itself: bounds memory held by slow uploads.
        limit_concurrency=max(64, 4 * queue_size),
        timeout_keep_alive=int(keep_alive),
    )
