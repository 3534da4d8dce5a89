"""`deepfake-detector predict-dataset`: a whole dataset into one Parquet table, locally or on Ray."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from deepfake_detector.cli.app import MODEL_HELP, alias, app, build, fail
from deepfake_detector.filelimits import READ_POLICY
from deepfake_detector.options import Engine, Faces, Runner
from deepfake_detector.options import PredictDatasetOptions as O
from deepfake_detector.outputs import plural


class _EngineOrRunner(StrEnum):
    """--engine: auto, torch or onnx; local and ray are its old meaning (now --runner), for one release."""

    auto = "auto"
    torch = "torch"
    onnx = "onnx"
    local = "local"
    ray = "ray"


@app.command("predict-dataset")
def predict_dataset(
    source: str = typer.Argument(
        ...,
        help="A folder (searched recursively), a manifest (.csv/.parquet with a path column), "
        "or a URI fsspec can open (s3://bucket/prefix/, gs://..., file:///...). " + READ_POLICY,
    ),
    model: str = typer.Option(O.model, "--model", "-m", help=MODEL_HELP),
    runner: Runner = typer.Option(
        O.runner, "--runner", help="local: this process; ray: a Ray Data actor pool."
    ),
    engine: _EngineOrRunner = typer.Option(
        O.engine.value,
        "--engine",
        metavar="<auto|torch|onnx>",
        help="Model runtime, as in predict (auto: ONNX Runtime when model.onnx exists).",
    ),
    backend: Engine | None = typer.Option(None, "--backend", hidden=True),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster to join ('auto': the one this node belongs to); unset: start one here.",
    ),
    out: Path = typer.Option(O.out, "--out", "-o", help="Parquet file to write."),
    batch_size: int = typer.Option(O.batch_size, "--batch-size", min=1, help="Images per inference batch."),
    num_actors: int | None = typer.Option(
        None,
        "--num-actors",
        min=1,
        help="Ray actors, one model each (default: cluster CPUs / --cpus-per-actor).",
    ),
    cpus_per_actor: float = typer.Option(
        O.cpus_per_actor, "--cpus-per-actor", min=0.1, help="CPUs Ray reserves per actor."
    ),
    gpus_per_actor: float = typer.Option(
        O.gpus_per_actor,
        "--gpus-per-actor",
        min=0.0,
        help="GPUs Ray reserves per actor (>0: the model runs on CUDA).",
    ),
    device: str = typer.Option(O.device, "--device", help="cpu, cuda, cuda:N or auto (PyTorch on a GPU)."),
    shard_rows: int | None = typer.Option(
        None, "--shard-rows", min=1, help="Images per shard, the unit of work (default 16 batches)."
    ),
    faces: Faces = typer.Option(O.faces, "--faces", help="Face policy, as in predict."),
    workers: int = typer.Option(O.workers, "--workers", min=1, help="Decode threads per scorer."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads per scorer."),
) -> None:
    """Score every image of a dataset and write path, label, prob_fake, confidence, threshold, faces,
    error, note and boxes per image to Parquet. Both runners give the same rows in the same order.
    Exit code 0 when every image was read, 1 when some could not be, 2 when none could.

    Example: deepfake-detector predict-dataset s3://bucket/crops/ --runner ray --address auto
    """
    from rich.console import Console

    from deepfake_detector.commands import dataset_exit_code, run_predict_dataset
    from deepfake_detector.locate import ModelNotFound
    from deepfake_detector.scale import SourceError

    engine_name = engine.value
    if engine in (_EngineOrRunner.local, _EngineOrRunner.ray):  # the old meaning of --engine
        print(f"note: --engine {engine.value} is deprecated, use --runner {engine.value}", file=sys.stderr)
        runner, engine_name = Runner(engine.value), O.engine.value
    engine_name = alias(engine_name, backend and backend.value, "--backend", "--engine", O.engine.value)
    options = build(O, locals(), engine=Engine(engine_name))
    try:
        result = run_predict_dataset(options)
    except (SourceError, ModelNotFound, ValueError, RuntimeError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    Console(stderr=True).print(
        f"{plural(result.images, 'image')}, {plural(result.errors, 'error')} in {result.seconds:.1f} s "
        f"({result.images_per_second:.1f} img/s, {options.runner.value}, {result.actors} scorer(s)) "
        f"-> {result.out}",
        highlight=False,
        markup=False,
    )
    code = dataset_exit_code(result.images, result.errors)
    if code:
        raise typer.Exit(code)
