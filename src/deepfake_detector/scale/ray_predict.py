"""`predict-dataset`: score every image of a dataset into a Parquet table, here or on a Ray cluster.

Both engines cut the same path list into the same shards and run the same `BatchScorer` (one
`Detector` each) on them, so they write the same rows in the same order. The Ray engine only
decides where the shards run: Ray Data hands them to an actor pool, `num_actors` actors that each
load the model once and stay up for the whole job.

Sources: a local folder (searched recursively), a manifest (.csv or .parquet with a `path` column;
relative paths are relative to the manifest's folder, as in `data.manifest`), one image file, or a
URI that fsspec can open (s3://bucket/prefix/, gs://..., file:///...), a folder or a manifest.
Remote objects are fetched into memory by the actor that scores them, so workers need
read access to the store, not a shared file system.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepfake_detector.data.images import UnreadableFile, check_regular_file, is_image_path
from deepfake_detector.inference.inputs import folder_images
from deepfake_detector.inference.pipeline import Item
from deepfake_detector.inference.results import Prediction

ENGINES = ("local", "ray")
MANIFEST_SUFFIXES = (".csv", ".parquet")
# Rows per shard: the unit a Ray task or actor call gets and the local engine loops over. Big enough
# that per-call overhead vanishes, small enough that a lost actor re-does little work.
DEFAULT_SHARD_BATCHES = 16

RESULT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("label", pa.string()),
        ("prob_fake", pa.float64()),
        ("confidence", pa.float64()),
        ("threshold", pa.float64()),
        ("uncertain_band", pa.float64()),
        ("face_count", pa.int32()),
        ("faces", pa.string()),  # JSON list of {box, prob_fake, label} per face
        ("error", pa.string()),
        ("note", pa.string()),
    ]
)


TEXT_FIELDS = {"path", "label", "faces", "error", "note"}


class SourceError(ValueError):
    """A source that names no images: missing, empty, or a manifest without a `path` column."""


def is_uri(path: str) -> bool:
    return "://" in path


# ---------------------------------------------------------------------------------------------- sources
def list_source(source: str) -> list[str]:
    """The image paths SOURCE stands for: sorted for folders and prefixes, as listed for manifests."""
    if source.lower().endswith(MANIFEST_SUFFIXES):
        paths = _read_manifest(source)
    elif is_uri(source):
        paths = _list_uri(source)
    elif os.path.isdir(source):
        paths = folder_images(source)
    elif os.path.exists(source):  # a FIFO or device too: the loader refuses it, in its row
        paths = [source]
    else:
        raise SourceError(f"{source}: no such folder, manifest (.csv/.parquet) or image file")
    if not paths:
        raise SourceError(f"{source}: holds no image files")
    return paths


def _read_manifest(source: str) -> list[str]:
    import pyarrow.csv as pa_csv

    try:
        if is_uri(source):
            import fsspec

            with fsspec.open(source, "rb") as fh:
                data = fh.read()
            reader = pa.BufferReader(data)
        else:
            check_regular_file(source, None, what="a manifest")  # a FIFO or device would hang the read
            reader = source  # type: ignore[assignment]
        if source.lower().endswith(".parquet"):
            table = pq.read_table(reader)
        else:
            table = pa_csv.read_csv(
                reader, convert_options=pa_csv.ConvertOptions(column_types={"path": pa.string()})
            )
    except FileNotFoundError as exc:
        raise SourceError(f"{source}: manifest not found") from exc
    except UnreadableFile as exc:  # not a regular file
        reason = "not found" if exc.reason == "file not found" else exc.reason
        raise SourceError(f"{source}: manifest {reason}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{source}: cannot read this manifest ({exc})") from exc
    if "path" not in table.column_names:
        raise SourceError(f"{source}: a manifest needs a 'path' column, has {table.column_names}")
    base = posixpath.dirname(source) if is_uri(source) else os.path.dirname(os.path.abspath(source))
    join = posixpath.join if is_uri(source) else os.path.join
    paths = []
    for value in table.column("path").to_pylist():
        if value is None or not str(value).strip():
            continue
        value = str(value).strip()
        paths.append(value if is_uri(value) or os.path.isabs(value) else join(base, value))
    return paths


def _list_uri(source: str) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(source)
    if not fs.exists(root):
        raise SourceError(f"{source}: no such object or prefix")
    if not fs.isdir(root):
        return [source]
    return sorted(fs.unstrip_protocol(p) for p in fs.find(root) if is_image_path(p))


def shards(paths: list[str], rows: int) -> list[pa.Table]:
    """Consecutive `rows`-path tables: Ray blocks, and the local engine's loop. Paths travel as bytes
    (os.fsencode), so a file name that is not valid UTF-8 still reaches the scorer exactly."""
    table = pa.table({"path": pa.array([os.fsencode(p) for p in paths], type=pa.binary())})
    return [table.slice(start, rows) for start in range(0, len(paths), rows)]


# ---------------------------------------------------------------------------------------------- scoring
def predictions_table(predictions: Iterable[Prediction]) -> pa.Table:
    rows = []
    for p in predictions:
        row = p.to_row()  # the CSV row: `faces` as JSON text, odd name bytes shown as \xNN
        rows.append({name: _arrow_value(name, row[name]) for name in RESULT_SCHEMA.names})
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)


def _arrow_value(name: str, value: Any) -> Any:
    """CSV's "" for a missing number is null in Parquet."""
    return None if value == "" and name not in TEXT_FIELDS else value


class BatchScorer:
    """A loaded Detector that turns a table of paths into a table of results.

    Ray Data builds one per actor (so the model is loaded once per actor, not per batch); the local
    engine builds one. Relative local paths are read against `cwd` (the driver's folder, which a
    Ray worker does not share) and reported as given; URIs are fetched into memory.
    """

    def __init__(
        self,
        model: str,
        backend: str = "auto",
        faces: str = "auto",
        batch_size: int = 64,
        workers: int = 2,
        threads: int | None = None,
        cwd: str | None = None,
        device: str = "cpu",
    ):
        from deepfake_detector.inference.detector import Detector

        self.detector = Detector.load(
            model,
            engine=backend,  # type: ignore[arg-type]
            threads=threads,
            device=device,
        )
        self.faces, self.batch_size, self.workers = faces, batch_size, workers
        self.cwd = cwd or os.getcwd()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return predictions_table(self.score([os.fsdecode(p) for p in batch.column("path").to_pylist()]))

    def score(self, paths: list[str]) -> list[Prediction]:
        """One Prediction per path, in order: local files read in place, remote objects fetched
        into memory and scored as bytes (no temporary files), through Detector.iter_predict."""
        items = self._items(paths)
        scored: list[Prediction] = []
        for chunk in self.detector.iter_predict(
            items,
            faces=self.faces,  # type: ignore[arg-type]
            batch_size=self.batch_size,
            workers=self.workers,
        ):
            scored.extend(chunk)
        return scored

    def _items(self, paths: list[str]) -> list[Item]:
        """An Item per path named as given: a local file (read against cwd) or a fetched object's bytes."""
        items = [Item(path, "image", os.path.join(self.cwd, path)) for path in paths]
        remote = {i: path for i, path in enumerate(paths) if is_uri(path)}
        if remote:
            import fsspec

            fs, _ = fsspec.core.url_to_fs(next(iter(remote.values())))
            keys = {i: fsspec.core.url_to_fs(uri)[1] for i, uri in remote.items()}
            # A list in, a dict out, fetched concurrently by async stores (s3, gcs, http).
            blobs = fs.cat(list(keys.values()), on_error="return")
            for i, uri in remote.items():
                blob = blobs.get(keys[i])
                if isinstance(blob, bytes | bytearray):
                    items[i] = Item(uri, "image", bytes(blob))
                else:
                    missing = isinstance(blob, FileNotFoundError)
                    items[i] = Item(
                        uri, "error", error="object not found" if missing else f"cannot fetch ({blob})"
                    )
        return items


# ---------------------------------------------------------------------------------------------- output
class ResultSink:
    """Streams result tables into one Parquet file (atomically renamed into place when done)."""

    def __init__(self, out: Path):
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        self.writer = pq.ParquetWriter(self.tmp, RESULT_SCHEMA)
        self.rows = 0
        self.errors = 0

    def write(self, table: pa.Table) -> None:
        table = table.cast(RESULT_SCHEMA)
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.errors += sum(1 for e in table.column("error").to_pylist() if e)

    def close(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        self.writer.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


@dataclass
class DatasetRun:
    out: Path
    images: int
    errors: int
    seconds: float
    engine: str
    actors: int

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def predict_dataset(
    source: str | list[str],
    model: str = "default",
    out: str | Path = "results.parquet",
    *,
    engine: str = "local",
    address: str | None = None,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    device: str = "cpu",
    batch_size: int = 64,
    shard_rows: int | None = None,
    faces: str = "auto",
    backend: str = "auto",
    workers: int = 2,
    threads: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DatasetRun:
    """Score SOURCE (or a list of paths) with `model` and write a Parquet file of results to `out`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    paths = list_source(source) if isinstance(source, str) else list(source)
    if not paths:
        raise SourceError("no input images")
    started = time.perf_counter()
    scorer_args: dict[str, Any] = {
        "model": str(model),
        "backend": backend,
        "faces": faces,
        "batch_size": batch_size,
        "workers": workers,
        "threads": threads,
        "cwd": os.getcwd(),
        # An actor that holds a GPU runs its model there.
        "device": "cuda" if gpus_per_actor > 0 and device == "cpu" else device,
    }
    blocks = shards(paths, shard_rows or batch_size * DEFAULT_SHARD_BATCHES)
    sink = ResultSink(Path(out))
    actors = 1
    try:
        if engine == "local":
            tables: Iterator[pa.Table] = map(BatchScorer(**scorer_args), blocks)
        else:
            tables, actors = _ray_tables(
                blocks, scorer_args, address, num_actors, cpus_per_actor, gpus_per_actor
            )
        for table in tables:
            sink.write(table)
            if on_progress is not None:
                on_progress(table.num_rows)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return DatasetRun(Path(out), sink.rows, sink.errors, time.perf_counter() - started, engine, actors)


def _ray_tables(
    blocks: list[pa.Table],
    scorer_args: dict[str, Any],
    address: str | None,
    num_actors: int | None,
    cpus_per_actor: float,
    gpus_per_actor: float = 0.0,
) -> tuple[Iterator[pa.Table], int]:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--engine ray needs Ray Data: pip install 'deepfake-detector[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
    actors = num_actors or max(1, int(cluster_cpus // cpus_per_actor))
    if gpus_per_actor > 0 and not num_actors:  # GPU actors: as many as the cluster's GPUs hold
        actors = max(1, int(float(ray.cluster_resources().get("GPU", 0)) // gpus_per_actor))
    if scorer_args["threads"] is None:  # one inference thread per CPU the actor holds
        scorer_args = {**scorer_args, "threads": max(1, int(cpus_per_actor))}
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order, as the local engine's
    dataset = ray.data.from_arrow(blocks).map_batches(
        BatchScorer,
        fn_constructor_kwargs=scorer_args,
        batch_size=None,  # one call per shard: same batches as the local engine
        batch_format="pyarrow",
        concurrency=actors,
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor or None,
    )
    return dataset.iter_batches(batch_size=None, batch_format="pyarrow"), actors
