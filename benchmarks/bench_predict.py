"""Prediction speed on CPU: PyTorch batched vs ONNX Runtime fp32 vs int8, 1 and 2 threads.

    python benchmarks/bench_predict.py --model runs/default-dfdc [--model other] \
        [--data ../shared/data/dfdc/Test] [--calib ../shared/data/dfdc/Validation]
    python benchmarks/bench_predict.py --untrained seed-cnn --untrained mobilenetv2   # no trained model yet

For every model and configuration (engine x threads) a fresh subprocess measures
  * predict: `Detector.iter_predict` over the whole folder (parallel decoding + batched inference):
    images/s, p50/p95 ms per image (batch interval / batch size), peak RSS of that process;
  * model only: the engine on preloaded batches: images/s, p50/p95 ms per image;
and once per model: FLOPs per image (torch.utils.flop_counter), the measured float32 matmul peak
(numpy and torch sgemm, 1 and 2 threads) and so the compute-bound limit in ms per image; the
end-to-end wall time of `deepfake-detector predict DATA --model M` as a whole process; and, when
TensorFlow is installed, the notebook's per-image Keras loop (benchmarks/keras_loop.py) likewise.
Writes benchmarks/results/predict.json and predict.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / ".." / "shared" / "data" / "dfdc" / "Test"
DEFAULT_CALIB = HERE.parent / ".." / "shared" / "data" / "dfdc" / "Validation"
ENGINES = ("torch", "onnx-fp32", "onnx-int8")


# ---------------------------------------------------------------------------- worker (one config)
def benchmark_sample(data: str | Path, limit: int | None) -> tuple[list[str], np.ndarray]:
    """All images of the folder, or a seeded sample of about `limit` (half per class)."""
    from deepfake_detector.data.manifest import discover_split

    manifest = discover_split(data)
    if limit:
        manifest = manifest.sample(max(1, limit // 2))
    return manifest.paths, manifest.labels


def benchmark_paths(data: str | Path, limit: int | None) -> list[str]:
    return benchmark_sample(data, limit)[0]


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Measure one (model, engine, threads) configuration in this fresh process."""
    from deepfake_detector.inference import Detector
    from deepfake_detector.inference.batching import iter_decoded

    paths, labels = benchmark_sample(config["data"], config.get("limit"))
    engine = "torch" if config["engine"] == "torch" else "onnx"
    detector = Detector.load(config["model_file"], engine=engine, threads=config["threads"])
    batch_size = config["batch_size"]

    # 1. The predict pipeline, as `deepfake-detector predict` runs it.
    stamps = [time.perf_counter()]
    sizes, probs = [], []
    for batch in detector.iter_predict(paths, faces="auto", batch_size=batch_size, workers=config["workers"]):
        stamps.append(time.perf_counter())
        sizes.append(len(batch))
        probs.extend(p.prob_fake if p.prob_fake is not None else np.nan for p in batch)
    pipeline_s = stamps[-1] - stamps[0]
    per_image = np.diff(stamps) / np.asarray(sizes) * 1000.0
    peak_rss_mb = _peak_rss_mb()
    probs_arr = np.asarray(probs, dtype=np.float64)
    fake = probs_arr >= detector.spec.threshold

    # 2. The model alone, on batches decoded beforehand.
    images = np.stack([img for _, img in iter_decoded(paths, detector.spec.img_size, workers=2)])
    from deepfake_detector.spec import preprocess_batch

    batches = [
        preprocess_batch(images[i : i + batch_size], detector.spec) for i in range(0, len(images), batch_size)
    ]
    detector.engine.logits(batches[0])  # warm-up
    times = []
    for batch in batches:
        start = time.perf_counter()
        detector.engine.logits(batch)
        times.append((time.perf_counter() - start) * 1000.0 / len(batch))
    model_s = sum(t * len(b) for t, b in zip(times, batches, strict=True)) / 1000.0
    return {
        "n_images": len(paths),
        "predict_images_per_s": len(paths) / pipeline_s,
        "predict_ms_p50": float(np.percentile(per_image, 50)),
        "predict_ms_p95": float(np.percentile(per_image, 95)),
        "predict_peak_rss_mb": peak_rss_mb,
        "model_images_per_s": len(paths) / model_s,
        "model_ms_p50": float(np.percentile(times, 50)),
        "model_ms_p95": float(np.percentile(times, 95)),
        "accuracy": float(np.mean(fake == labels.astype(bool))),
        "decisions": "".join("1" if f else "0" for f in fake),
    }


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------- compute bound
def flops_per_image(model_ref: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from deepfake_detector.models import load_bundle

    model, spec = load_bundle(model_ref)
    x = torch.zeros(1, 3, spec.img_size, spec.img_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return float(counter.get_total_flops())


def matmul_peak_gflops(threads: int, n: int = 1536, repeats: int = 5) -> dict[str, float]:
    """Best float32 GEMM rate, numpy (OpenBLAS) and torch, with `threads` threads."""
    import torch
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3
    best = {}
    with threadpool_limits(limits=threads):
        a @ b
        best["numpy"] = max(flop / _timed(lambda: a @ b) for _ in range(repeats)) / 1e9
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta @ tb
    best["torch"] = max(flop / _timed(lambda: ta @ tb) for _ in range(repeats)) / 1e9
    torch.set_num_threads(old)
    return best


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- orchestration
def run_child(args: list[str]) -> str:
    """stdout of a child process; raises with its stderr on failure."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


# Run a command from a small launcher process and report its wall time and peak RSS. Linux carries a
# parent's peak RSS into a forked child's, so forking the command from this (large) process would
# report our own peak instead of the command's.
_LAUNCHER = """
import json, resource, subprocess, sys, time
stdin = open(sys.argv[1], "rb") if sys.argv[1] != "-" else subprocess.DEVNULL
start = time.perf_counter()
done = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
print(json.dumps({"wall": wall, "peak_rss_mb": peak, "code": done.returncode,
                  "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""


def spawn_measured(args: list[str], stdin: Path | None = None) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit code, stderr tail) of a command run as a whole process."""
    launcher = [sys.executable, "-c", _LAUNCHER, str(stdin) if stdin else "-"]
    out = subprocess.run([*launcher, *args], capture_output=True, text=True, check=True)
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    return measured["wall"], measured["peak_rss_mb"], measured["code"], measured["stderr"]


def prepare_model(ref: str, work: Path, calib: Path | None) -> dict[str, Any]:
    """Copy the bundle into `work`, export ONNX fp32 and int8 there; returns paths and the int8 report."""
    from deepfake_detector.inference.export import export_onnx, quantize_int8
    from deepfake_detector.locate import model_dir
    from deepfake_detector.spec import ModelSpec

    src = model_dir(ref)
    dst = work / src.name
    shutil.copytree(src, dst, dirs_exist_ok=True)
    fp32 = export_onnx(dst)
    spec = ModelSpec.load(dst / "model.json")
    report = quantize_int8(fp32, spec, calib if calib and calib.is_dir() else None)
    return {"dir": dst, "fp32": fp32, "int8": report.path, "quant": report.to_dict(), "spec": spec}


def make_untrained(arch: str, work: Path) -> str:
    from deepfake_detector.models import create_model, model_info, save_bundle
    from deepfake_detector.spec import ModelSpec

    info = model_info(arch)
    folder = work / f"untrained-{arch}"
    model = create_model(arch, pretrained=False)
    spec = ModelSpec(
        architecture=arch,
        img_size=info.default_img_size,
        mean=info.mean,
        std=info.std,
        name=f"untrained-{arch}",
    )
    save_bundle(model, spec, folder)
    return str(folder)


def bench_model(
    ref: str, args: argparse.Namespace, work: Path, peaks: dict[int, dict[str, float]]
) -> dict[str, Any]:
    print(f"== {ref}", file=sys.stderr)
    prepared = prepare_model(ref, work, args.calib)
    spec = prepared["spec"]
    flops = flops_per_image(str(prepared["dir"]))
    result: dict[str, Any] = {
        "model": ref,
        "architecture": spec.architecture,
        "img_size": spec.img_size,
        "gflops_per_image": flops / 1e9,
        "int8_quantisation": prepared["quant"],
        "configs": [],
    }
    files = {"torch": prepared["dir"], "onnx-fp32": prepared["fp32"], "onnx-int8": prepared["int8"]}
    for engine in ENGINES:
        for threads in args.threads:
            config = {
                "engine": engine,
                "model_file": str(files[engine]),
                "threads": threads,
                "data": str(args.data),
                "batch_size": args.batch_size,
                "workers": args.workers,
                "limit": args.limit,
            }
            print(f"   {engine} x{threads}", file=sys.stderr)
            out = run_child([sys.executable, __file__, "--worker", json.dumps(config)])
            measured = json.loads(out.strip().splitlines()[-1])
            peak = max(peaks[threads].values()) * 1e9
            measured["compute_bound_ms"] = flops / peak * 1000.0
            measured["fraction_of_compute_bound"] = measured["compute_bound_ms"] / measured["model_ms_p50"]
            result["configs"].append({"engine": engine, "threads": threads, **measured})
    reference = next(c["decisions"] for c in result["configs"] if c["engine"] == "torch")
    for config in result["configs"]:
        config["agreement_with_torch"] = float(
            np.mean([a == b for a, b in zip(config.pop("decisions"), reference, strict=True)])
        )

    # Whole process, start-up included, as a user runs it (engine auto -> ONNX fp32 beside model.json).
    # With --limit the same sampled paths as the workers' are given on stdin (`predict -`).
    cli = str(Path(sys.executable).with_name("deepfake-detector"))
    out_csv = work / f"e2e-{spec.architecture}.csv"
    source, stdin = str(args.data), None
    if args.limit:
        stdin = work / "paths.txt"
        stdin.write_text("\n".join(benchmark_paths(args.data, args.limit)) + "\n")
        source = "-"
    command = [
        cli,
        "predict",
        source,
        "--model",
        str(prepared["dir"]),
        "--format",
        "csv",
        "--out",
        str(out_csv),
    ]
    wall, rss, code, err = spawn_measured(command, stdin=stdin)
    if code not in (0, 1):
        raise RuntimeError(f"end-to-end predict failed ({code}): {err}")
    n = len(out_csv.read_text().splitlines()) - 1
    result["end_to_end"] = {
        "command": " ".join(["deepfake-detector", *command[1:3], "--model M --format csv --out F"]),
        "engine": "onnx-fp32 (auto)",
        "n_images": n,
        "wall_s": wall,
        "images_per_s": n / wall,
        "peak_rss_mb": rss,
    }
    return result


def bench_keras(args: argparse.Namespace) -> dict[str, Any] | None:
    python = str(args.keras_python) if args.keras_python.is_file() else sys.executable
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)"],
        capture_output=True,
    )
    if probe.returncode != 0:
        print(f"tensorflow not importable by {python}: skipping the notebook's Keras loop", file=sys.stderr)
        return None
    print("== notebook Keras per-image loop (seed CNN)", file=sys.stderr)
    cmd = [python, str(HERE / "keras_loop.py"), str(args.data)]
    if args.keras_limit:
        cmd += ["--limit", str(args.keras_limit)]
    wall, rss, code, err = spawn_measured(cmd)
    if code != 0:
        raise RuntimeError(f"keras loop failed: {err}")
    n = min(args.keras_limit or 10**9, _count_images(args.data))
    return {
        "command": "benchmarks/keras_loop.py DATA (the notebook's predict_image per file, whole process)",
        "python": python,
        "n_images": n,
        "wall_s": wall,
        "images_per_s": n / wall,
        "ms_per_image": wall / n * 1000,
        "peak_rss_mb": rss,
    }


def _count_images(data: Path) -> int:
    from deepfake_detector.data.manifest import discover_split

    return len(discover_split(data).paths)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    import onnxruntime
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def write_markdown(report: dict[str, Any], path: Path) -> None:
    lines = ["# Prediction speed (CPU)", ""]
    m = report["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average_at_start"])
    lines += [
        f"Machine: {m['cpu']} ({m['cores']} cores), torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}; "
        f"load average at start {load}. "
        f"Data: {report['data']} ({report['n_images']} images), batch {report['batch_size']}, "
        f"{report['workers']} decode threads.",
        "",
    ]
    peaks = report["matmul_peak_gflops"]
    lines += [
        "Measured float32 matmul peak: "
        + "; ".join(
            f"{t} thread(s): numpy {p['numpy']:.1f}, torch {p['torch']:.1f} GFLOP/s" for t, p in peaks.items()
        ),
        "",
    ]
    for model in report["models"]:
        lines += [
            f"## {model['model']} ({model['architecture']}, {model['img_size']} px, "
            f"{model['gflops_per_image']:.3f} GFLOP/image)",
            "",
            "| engine | threads | predict img/s | predict p50 / p95 ms/img | peak RSS MB "
            "| model-only img/s | model p50 / p95 ms/img | compute bound ms/img | of bound "
            "| accuracy | same as torch |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in model["configs"]:
            lines.append(
                f"| {c['engine']} | {c['threads']} | {c['predict_images_per_s']:.0f} | "
                f"{c['predict_ms_p50']:.2f} / {c['predict_ms_p95']:.2f} | {c['predict_peak_rss_mb']:.0f} | "
                f"{c['model_images_per_s']:.0f} | {c['model_ms_p50']:.2f} / {c['model_ms_p95']:.2f} | "
                f"{c['compute_bound_ms']:.2f} | {c['fraction_of_compute_bound']:.0%} | {c['accuracy']:.4f} | "
                f"{c['agreement_with_torch']:.2%} |"
            )
        q = model["int8_quantisation"]
        acc = ""
        if q.get("accuracy_fp32") is not None:
            acc = f", accuracy fp32 {q['accuracy_fp32']:.4f} vs int8 {q['accuracy_int8']:.4f}"
        e2e = model["end_to_end"]
        lines += [
            "",
            f"int8 calibration: {q['n_images']} images from {q['calibration']}; "
            f"{q['decision_agreement']:.2%} same decisions as fp32{acc}.",
            "",
            f"End to end (`{e2e['command']}`, whole process): {e2e['n_images']} images in "
            f"{e2e['wall_s']:.1f} s = {e2e['images_per_s']:.0f} img/s, "
            f"peak RSS {e2e['peak_rss_mb']:.0f} MB.",
            "",
        ]
    keras = report.get("keras_loop")
    if keras:
        lines += [
            "## Notebook Keras per-image loop",
            "",
            f"{keras['n_images']} images in {keras['wall_s']:.1f} s (whole process) = "
            f"{keras['ms_per_image']:.1f} ms/image, "
            f"peak RSS {keras['peak_rss_mb']:.0f} MB.",
            "",
        ]
        for model in report["models"]:
            e2e = model["end_to_end"]
            per_image_keras = keras["wall_s"] / keras["n_images"]
            per_image_ours = e2e["wall_s"] / e2e["n_images"]
            speedup = per_image_keras / per_image_ours
            lines.append(
                f"- {model['model']}: end-to-end predict is {speedup:.1f}x faster "
                "per image than the Keras loop."
            )
        lines.append("")
    else:
        lines += ["Notebook Keras loop: not run (TensorFlow is not installed).", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", default=[], help="Model reference (repeatable).")
    parser.add_argument(
        "--untrained", action="append", default=[], help="Benchmark a fresh ARCH (repeatable)."
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--calib", type=Path, default=DEFAULT_CALIB, help="Calibration folder for int8.")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N images (quick look).")
    parser.add_argument(
        "--keras-python",
        type=Path,
        default=Path(".venv-notebook/bin/python"),
        help="Interpreter with TensorFlow for the Keras loop (default .venv-notebook, else this one).",
    )
    parser.add_argument(
        "--keras-limit", type=int, default=None, help="Keras loop on the first N images only."
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    if not args.model and not args.untrained:
        parser.error("give --model M (a trained model) or --untrained ARCH")

    from deepfake_detector.fileio import atomic_write_json

    report: dict[str, Any] = {
        "machine": machine(),
        "data": str(args.data),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "limit": args.limit,
    }
    peaks = {t: matmul_peak_gflops(t) for t in args.threads}
    report["matmul_peak_gflops"] = peaks
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        work = Path(tmp)
        refs = list(args.model) + [make_untrained(arch, work / "untrained") for arch in args.untrained]
        report["models"] = [bench_model(ref, args, work, peaks) for ref in refs]
    report["n_images"] = report["models"][0]["configs"][0]["n_images"]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "predict.json", report)  # kept even if the Keras loop fails
    report["keras_loop"] = bench_keras(args)
    atomic_write_json(args.out / "predict.json", report)
    write_markdown(report, args.out / "predict.md")
    print((args.out / "predict.md").read_text())


if __name__ == "__main__":
    main()
