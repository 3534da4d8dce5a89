"""`deepfake-detector serve`: the HTTP API and web page (FastAPI on uvicorn)."""

from __future__ import annotations

import typer

from deepfake_detector.cli.app import BAND_HELP, MODEL_HELP, THRESHOLD_HELP, app, build, fail
from deepfake_detector.options import Engine, LogLevel
from deepfake_detector.options import ServeOptions as O


@app.command()
def serve(
    model: str = typer.Option(O.model, "--model", "-m", help=MODEL_HELP),
    host: str = typer.Option(O.host, "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(O.port, "--port", min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(
        O.workers, "--workers", min=1, help="Server processes, each with its own model copy."
    ),
    engine: Engine = typer.Option(
        O.engine, "--engine", help="auto: ONNX Runtime when model.onnx exists, else PyTorch."
    ),
    max_upload_mb: float = typer.Option(
        O.max_upload_mb, "--max-upload-mb", min=0.001, help="Largest image accepted (413)."
    ),
    max_pixels: int = typer.Option(O.max_pixels, "--max-pixels", min=1, help="Largest decoded image (422)."),
    max_video_mb: float = typer.Option(
        O.max_video_mb, "--max-video-mb", min=0.001, help="Largest video accepted (413)."
    ),
    max_video_s: float = typer.Option(
        O.max_video_s, "--max-video-s", min=0.1, help="Longest video accepted (422)."
    ),
    threshold: float | None = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    uncertain_band: float | None = typer.Option(None, "--uncertain-band", help=BAND_HELP),
    queue_size: int = typer.Option(
        O.queue_size,
        "--queue-size",
        min=1,
        help="Inference jobs admitted at once per process; more get 503 + Retry-After.",
    ),
    timeout: float = typer.Option(O.timeout, "--timeout", min=0.001, help="Seconds per request before 504."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Inference threads per process (cores)."
    ),
    max_batch_files: int = typer.Option(
        O.max_batch_files, "--max-batch-files", min=1, help="Files per batch request."
    ),
    upload_timeout: float = typer.Option(
        O.upload_timeout, "--upload-timeout", min=0.001, help="Seconds to receive a request body before 408."
    ),
    keep_alive: float = typer.Option(
        O.keep_alive,
        "--keep-alive",
        min=1.0,
        help="Seconds an idle connection is kept open; keep it above the idle timeout of clients and proxies.",
    ),
    log_level: LogLevel = typer.Option(O.log_level, "--log-level", case_sensitive=False, help="Log level."),
) -> None:
    """Serve the detector: a web page at / and a REST API (POST /v1/predict, /v1/predict/batch,
    POST /v1/predict/video, GET /v1/model, /healthz, /readyz; OpenAPI at /docs). Logs are JSON lines
    on stderr.

    Example: deepfake-detector serve --model runs/mobilenet --port 8000
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise fail("serving needs the [serve] extra: pip install 'deepfake-detector[serve]'") from exc
    from deepfake_detector.commands import serve as run_server
    from deepfake_detector.locate import ModelNotFound
    from deepfake_detector.options import check_rule

    options = build(O, locals())
    try:
        check_rule(threshold, uncertain_band)
        run_server(options)
    except (ModelNotFound, ValueError) as exc:
        raise fail(str(exc)) from exc
