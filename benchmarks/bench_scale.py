"""Batch scoring throughput on this machine: `predict-dataset --engine local` vs `--engine ray`.

    python benchmarks/bench_scale.py [--model runs/default-dfdc | --untrained mobilenetv2] \
        [--data ../shared/data/dfdc/Test] [--limit 1000]

Every configuration runs in a fresh subprocess on the same manifest (a seeded sample of --limit
images, half per class) and reports
  * end-to-end images/s: `predict_dataset` from its call to the closed Parquet file, including Ray
    actor start-up and one model load per actor (not the Python start or `ray.init`, timed apart);
  * marginal images/s: the same configuration is also run on the first quarter of the manifest
    (after one untimed warm-up run on it);
    (images - quarter) / (seconds - quarter's seconds) cancels the fixed start-up cost, i.e. the
    rate a long job settles at once every actor is up;
  * the largest |prob_fake| difference from the local engine's rows (they should be identical).
The default model is the packaged one when it exists, else an untrained mobilenetv2 at 128 px
(the shipped architecture, so the same arithmetic per image). Writes benchmarks/results/scale.json
and scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / ".." / "shared" / "data" / "dfdc" / "Test"
PACKAGED = HERE.parent / "src" / "deepfake_detector" / "weights" / "default" / "model.json"
CONFIGS: list[dict[str, Any]] = [
    {"name": "local, 2 threads", "engine": "local", "threads": 2},
    {"name": "ray, 2 actors x 1 CPU", "engine": "ray", "num_actors": 2, "cpus_per_actor": 1.0},
    {"name": "ray, 1 actor x 2 CPUs", "engine": "ray", "num_actors": 1, "cpus_per_actor": 2.0},
]


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this fresh process."""
    from deepfake_detector.scale import predict_dataset

    init_s = 0.0
    if config["engine"] == "ray":
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - start

    def timed(manifest: str, out: str):
        return predict_dataset(
            manifest,
            config["model"],
            out,
            engine=config["engine"],
            num_actors=config.get("num_actors"),
            cpus_per_actor=config.get("cpus_per_actor", 1.0),
            batch_size=config["batch_size"],
            shard_rows=config["shard_rows"],
            threads=config.get("threads"),
            workers=2,
        )

    timed(config["small_manifest"], config["out"] + ".warm-up.parquet")  # Ray's worker pool, file cache
    small = timed(config["small_manifest"], config["out"] + ".small.parquet")
    run = timed(config["manifest"], config["out"])
    # Both runs pay the same start-up (actor pool, one model load per actor): the difference is the
    # rate a long job settles at.
    marginal = (run.images - small.images) / (run.seconds - small.seconds)
    return {
        "images": run.images,
        "errors": run.errors,
        "actors": run.actors,
        "ray_init_s": round(init_s, 2),
        "seconds": round(run.seconds, 2),
        "small_images": small.images,
        "small_seconds": round(small.seconds, 2),
        "end_to_end_img_s": round(run.images_per_second, 1),
        "marginal_img_s": round(marginal, 1),
    }


def decode_rate(paths: list[str], size: int) -> float:
    """Images/s of decoding alone on one thread: the CPU work per image no accelerator removes."""
    from deepfake_detector.data.images import load_image

    start = time.perf_counter()
    for path in paths:
        load_image(path, size=size)
    return len(paths) / (time.perf_counter() - start)


def make_model(args: argparse.Namespace, tmp: Path) -> tuple[str, str]:
    if args.model:
        return args.model, args.model
    if PACKAGED.is_file() and not args.untrained:
        return "default", "packaged default model"
    name = args.untrained or "mobilenetv2"
    from deepfake_detector.models import create_model, model_info, save_bundle
    from deepfake_detector.spec import ModelSpec

    info = model_info(name)
    folder = tmp / f"untrained-{name}"
    save_bundle(
        create_model(name, img_size=128),
        ModelSpec(architecture=name, img_size=128, mean=info.mean, std=info.std, name=f"untrained-{name}"),
        folder,
    )
    return str(folder), f"untrained {name} at 128 px"


def write_report(doc: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# predict-dataset: local vs Ray Data on this machine",
        "",
        f"{doc['images']} images from `{doc['data']}`, model: {doc['model']}, batch {doc['batch_size']}, "
        f"shards of {doc['shard_rows']} images, "
        f"{doc['cpus']} CPUs ({doc['cpu']}), load average before the run {doc['load_before']}, "
        f"after {doc['load_after']}. Measured by `benchmarks/bench_scale.py` on {doc['date']}.",
        "",
        "| configuration | end-to-end img/s | marginal img/s | seconds | ray.init s | max Δprob vs local |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['name']} | {r['end_to_end_img_s']} | {r['marginal_img_s']} | {r['seconds']} | "
            f"{r['ray_init_s']} | {r['max_abs_prob_diff']} |"
        )
    lines += [
        "",
        f"Decoding alone (`load_image` at {doc['decode_size']} px, one thread): "
        f"{doc['decode_only_1_thread_img_s']} img/s.",
        "",
        "End-to-end includes actor start-up and one model load per actor. Marginal: each configuration",
        "also scores the first quarter of the images; (images - quarter) / (seconds - quarter's seconds)",
        "cancels the fixed start-up, i.e. the rate a long job settles at. Python start-up and `ray.init`",
        "are not included (ray.init is listed apart).",
    ]
    if doc.get("note"):
        lines += ["", doc["note"]]
    (out_dir / "scale.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="run folder or model file (default: packaged model, else untrained)")
    parser.add_argument("--untrained", help="architecture to time untrained (default mobilenetv2)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--limit", type=int, default=2916)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-rows", type=int, default=128, help="images per shard (Ray block)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line added to scale.md (e.g. what else ran meanwhile)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_worker(json.loads(args.worker))))
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepfake_detector.data.manifest import discover_split

    manifest = discover_split(args.data).sample(max(1, args.limit // 2))
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_label = make_model(args, tmp)
        manifest_path = tmp / "manifest.parquet"
        all_paths = [os.path.abspath(p) for p in manifest.paths]
        pq.write_table(pa.table({"path": all_paths}), manifest_path)
        small_manifest = tmp / "small.parquet"
        pq.write_table(pa.table({"path": all_paths[: len(all_paths) // 4]}), small_manifest)
        load_before = [round(x, 2) for x in os.getloadavg()]
        results = []
        reference: dict[str, float | None] = {}
        for i, config in enumerate(CONFIGS):
            job = {
                **config,
                "manifest": str(manifest_path),
                "small_manifest": str(small_manifest),
                "model": model,
                "out": str(tmp / f"out-{i}.parquet"),
                "batch_size": args.batch_size,
                "shard_rows": args.shard_rows,
            }
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{config['name']} failed:\n{proc.stderr[-3000:]}")
            result = {"name": config["name"], **config, **json.loads(line[len("RESULT ") :])}
            rows = pq.read_table(job["out"]).to_pylist()
            probs = {r["path"]: r["prob_fake"] for r in rows}
            if not reference:
                reference = probs
            diffs = [
                abs(probs[p] - q) for p, q in reference.items() if q is not None and probs.get(p) is not None
            ]
            same_rows = [r["path"] for r in rows] == list(reference)
            result["max_abs_prob_diff"] = max(diffs) if diffs else None
            result["same_paths_in_order"] = same_rows
            results.append(result)
            print(json.dumps(result), flush=True)
        from deepfake_detector.locate import model_dir
        from deepfake_detector.spec import ModelSpec

        img_size = ModelSpec.load(model_dir(model) / "model.json").img_size
        decode_img_s = decode_rate(manifest.paths, img_size)
        load_after = [round(x, 2) for x in os.getloadavg()]

    import ray

    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "data": os.path.relpath(args.data, HERE.parent),
        "images": len(manifest),
        "model": model_label,
        "batch_size": args.batch_size,
        "shard_rows": args.shard_rows,
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "load_before": load_before,
        "load_after": load_after,
        "note": args.note,
        "decode_only_1_thread_img_s": round(decode_img_s, 1),
        "decode_size": img_size,
        "results": results,
    }
    write_report(doc, Path(args.out))
    print(f"wrote {Path(args.out) / 'scale.json'} and scale.md")


if __name__ == "__main__":
    main()
