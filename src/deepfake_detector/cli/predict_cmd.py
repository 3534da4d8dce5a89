"""`deepfake-detector predict`: score image and video files, folders, globs or paths from stdin."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from deepfake_detector.cli.app import app, fail

PROGRESS_MIN_IMAGES = 256  # below this a run takes seconds and a bar is only noise


@app.command()
def predict(
    paths: list[str] = typer.Argument(
        ...,
        help="Image or video files, folders (searched recursively), glob patterns, or - to read paths from stdin.",
    ),
    model: str = typer.Option("default", "--model", "-m", help="Run folder, model file or 'default'."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output format: table, csv, json or jsonl."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write results to this file instead of stdout."
    ),
    faces: str = typer.Option(
        "auto",
        "--faces",
        help="auto: detect faces except in images that already are face crops (square-ish, <= 512 px); "
        "always: detect faces in every image; never: score each whole image.",
    ),
    heatmap: Path | None = typer.Option(
        None,
        "--heatmap",
        help="Folder for Grad-CAM overlays per face and an index.html page (needs PyTorch).",
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per inference batch."),
    workers: int = typer.Option(2, "--workers", min=1, help="Threads decoding images in parallel."),
    engine: str = typer.Option(
        "auto", "--engine", help="auto (ONNX Runtime when model.onnx exists, else PyTorch), torch or onnx."
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads (ONNX default 2)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (PyTorch on a GPU)."),
    resume: bool = typer.Option(
        False, "--resume", help="With --format jsonl --out F: skip paths already in F and append the rest."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Videos: frames to score, spread uniformly over the video (default 32)."
    ),
    every: int | None = typer.Option(
        None, "--every", min=1, help="Videos: score every K-th frame instead of --frames."
    ),
    aggregate: str = typer.Option(
        "confident",
        "--aggregate",
        help="Videos: per-track score. confident: the mean of the most suspicious quarter of the frames "
        "when they all look fake, else of the surest-real quarter; mean: the mean of all frames.",
    ),
    video_out: Path | None = typer.Option(
        None,
        "--video-out",
        help="Videos: folder for each video's contact sheet (<name>-<hash>.frames.png) and timeline plot "
        "(.timeline.png); default: the --heatmap folder when given, else none are written.",
    ),
) -> None:
    """Tell whether images are real or deepfakes: one row per image with label, probability of
    fake, confidence, threshold, faces found and any error. Exit code 0 when every image was read,
    1 when some could not be, 2 when none could.

    A video (mp4, mov, avi, webm, mkv) is one row too: faces are found in sampled frames, tracked,
    scored and aggregated; json/jsonl add its tracks, key frames and timeline.

    Example: deepfake-detector predict photos/ --format csv --out results.csv
    Example: deepfake-detector predict clip.mp4 --every 10 --video-out reports/ --format json
    """
    from rich.console import Console

    from deepfake_detector.inference.detector import Detector
    from deepfake_detector.inference.inputs import expand_inputs
    from deepfake_detector.inference.results import Prediction
    from deepfake_detector.inference.video import is_video_path
    from deepfake_detector.inference.writers import FORMATS, PredictionWriter, read_done_paths
    from deepfake_detector.locate import ModelNotFound

    console = Console(stderr=True)
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if faces not in ("auto", "always", "never"):
        raise fail(f"--faces must be auto, always or never, got {faces!r}")
    if engine not in ("auto", "torch", "onnx"):
        raise fail(f"--engine must be auto, torch or onnx, got {engine!r}")
    if resume and (fmt != "jsonl" or out is None):
        raise fail("--resume needs --format jsonl and --out FILE (the file to continue)")
    if frames is not None and every is not None:
        raise fail("give --frames (spread uniformly) or --every (every K-th frame), not both")
    if aggregate not in ("confident", "mean"):
        raise fail(f"--aggregate must be confident or mean, got {aggregate!r}")
    from deepfake_detector.inference.video_scoring import VideoOptions

    video = VideoOptions(frames=frames, every=every, aggregate=aggregate, out_dir=video_out)  # type: ignore[arg-type]

    expanded = expand_inputs(paths)
    done: set[str] = set()
    if resume and out is not None:
        try:
            done = read_done_paths(out)
        except ValueError as exc:
            raise fail(str(exc)) from exc
    todo = [p for p in expanded.paths if p not in done]
    unusable = [(item, reason) for item, reason in expanded.problems if item not in done]
    skipped = len(expanded.paths) + len(expanded.problems) - len(todo) - len(unusable)
    if not todo and not unusable:
        if skipped:
            console.print(f"nothing to do: all {skipped} images are already in {out}")
            return
        raise fail("no input images")

    try:
        detector = Detector.load(model, engine=engine, threads=threads, device=device)  # type: ignore[arg-type]
    except (ModelNotFound, ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    threshold = float(detector.spec.threshold)
    writer = PredictionWriter(
        fmt,
        out,
        append=resume,
        meta={"model": str(model), "engine": detector.engine_name, "threshold": threshold},
    )
    counts = {"images": 0, "fake": 0, "real": 0, "no_face": 0, "errors": 0}

    def record(batch: list[Prediction]) -> None:
        writer.write(batch)
        for p in batch:
            counts["images"] += 1
            if p.error:
                counts["errors"] += 1
            elif p.label in ("fake", "real"):
                counts[p.label] += 1
            else:
                counts["no_face"] += 1

    if unusable:
        record([Prediction(item, "", None, threshold, error=reason) for item, reason in unusable])

    advance = None
    if len(todo) >= PROGRESS_MIN_IMAGES:
        from deepfake_detector.inference.progress import make_progress

        advance = make_progress(len(todo))
    try:
        for batch in detector.iter_predict(
            todo,
            faces=faces,
            batch_size=batch_size,
            workers=workers,
            heatmap_dir=heatmap,  # type: ignore[arg-type]
            video=video,
        ):
            record(batch)
            if advance is not None:
                advance(len(batch))
    except RuntimeError as exc:  # e.g. heatmaps asked for without PyTorch
        raise fail(str(exc)) from exc
    finally:
        if advance is not None:
            advance(0, done=True)

    elapsed = time.perf_counter() - started
    scored = counts["images"] - counts["errors"]
    summary = {
        **counts,
        "skipped_already_done": skipped,
        "seconds": round(elapsed, 3),
        "images_per_second": round(counts["images"] / elapsed, 1) if elapsed > 0 else None,
    }
    writer.close(summary)
    console.print(
        f"{counts['images']} images: {counts['fake']} fake, {counts['real']} real, "
        f"{counts['no_face']} no face, {counts['errors']} errors"
        + (f", {skipped} already done" if skipped else "")
        + f" in {elapsed:.1f} s ({summary['images_per_second']} img/s, {detector.engine_name})",
        highlight=False,
    )
    if heatmap is not None:
        console.print(f"heatmaps: {heatmap / 'index.html'}", highlight=False)
    if (video.out_dir is not None or heatmap is not None) and any(is_video_path(p) for p in todo):
        console.print(f"video contact sheets and timelines: {video.out_dir or heatmap}", highlight=False)
    if counts["errors"]:
        raise typer.Exit(2 if scored == 0 else 1)
