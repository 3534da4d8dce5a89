"""`deepfake-detector predict-dataset`: a whole dataset into one Parquet table, locally or on Ray."""

from __future__ import annotations

from pathlib import Path

import typer

from deepfake_detector.cli.app import app, fail


@app.command("predict-dataset")
def predict_dataset(
    source: str = typer.Argument(
        ...,
        help="A folder (searched recursively), a manifest (.csv/.parquet with a path column), "
        "or a URI fsspec can open (s3://bucket/prefix/, gs://..., file:///...).",
    ),
    model: str = typer.Option("default", "--model", "-m", help="Run folder, model file or 'default'."),
    engine: str = typer.Option("local", "--engine", help="local: this process; ray: a Ray Data actor pool."),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster to join ('auto': the one this node belongs to); unset: start one here.",
    ),
    out: Path = typer.Option(Path("results.parquet"), "--out", "-o", help="Parquet file to write."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per inference batch."),
    num_actors: int | None = typer.Option(
        None,
        "--num-actors",
        min=1,
        help="Ray actors, one model each (default: cluster CPUs / --cpus-per-actor).",
    ),
    cpus_per_actor: float = typer.Option(
        1.0, "--cpus-per-actor", min=0.1, help="CPUs Ray reserves per actor."
    ),
    gpus_per_actor: float = typer.Option(
        0.0, "--gpus-per-actor", min=0.0, help="GPUs Ray reserves per actor (>0: the model runs on CUDA)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (PyTorch on a GPU)."),
    shard_rows: int | None = typer.Option(
        None, "--shard-rows", min=1, help="Images per shard, the unit of work (default 16 batches)."
    ),
    faces: str = typer.Option("auto", "--faces", help="auto, always or never (as in predict)."),
    backend: str = typer.Option(
        "auto", "--backend", help="Model runtime: auto, torch or onnx (as predict's --engine)."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Decode threads per scorer."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads per scorer."),
) -> None:
    """Score every image of a dataset and write path, label, prob_fake, confidence, threshold, faces,
    error, note and boxes per image to Parquet. Both engines give the same rows in the same order.
    Exit code 0 when every image was read, 1 when some could not be, 2 when none could.

    Example: deepfake-detector predict-dataset s3://bucket/crops/ --engine ray --address auto
    """
    from rich.console import Console

    from deepfake_detector.locate import ModelNotFound
    from deepfake_detector.scale import SourceError
    from deepfake_detector.scale import predict_dataset as run

    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, got {engine!r}")
    if faces not in ("auto", "always", "never"):
        raise fail(f"--faces must be auto, always or never, got {faces!r}")
    if backend not in ("auto", "torch", "onnx"):
        raise fail(f"--backend must be auto, torch or onnx, got {backend!r}")
    if out.suffix.lower() != ".parquet":
        raise fail(f"--out must name a .parquet file, got {out}")
    try:
        result = run(
            source,
            model,
            out,
            engine=engine,
            address=address,
            num_actors=num_actors,
            cpus_per_actor=cpus_per_actor,
            gpus_per_actor=gpus_per_actor,
            device=device,
            batch_size=batch_size,
            shard_rows=shard_rows,
            faces=faces,
            backend=backend,
            workers=workers,
            threads=threads,
        )
    except (SourceError, ModelNotFound, ValueError, RuntimeError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    Console(stderr=True).print(
        f"{result.images} images, {result.errors} errors in {result.seconds:.1f} s "
        f"({result.images_per_second:.1f} img/s, {engine}, {result.actors} scorer(s)) -> {result.out}",
        highlight=False,
    )
    if result.errors:
        raise typer.Exit(2 if result.errors == result.images else 1)
