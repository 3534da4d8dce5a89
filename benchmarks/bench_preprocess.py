"""Pre-processing cost per image: `preprocess_batch` (one table lookup per value) vs the float
arithmetic it replaced (commit 9f1b5f6: astype, scale, subtract mean, divide by std, transpose).

    nice -n 10 python benchmarks/bench_preprocess.py [--batch 64] [--size 128] [--rounds 30]

This is the work done on the thread that feeds the model, per batch of RGB uint8 images already at
the model's size (a list, as the inference pipeline passes them). The inputs are seeded random
pixels (the cost does not depend on the content), the spec uses ImageNet mean/std as the shipped
models do. One process, pinned to one CPU; speeds come from this process's CPU time, best round.
Both outputs are checked to agree. Writes benchmarks/results/preprocess.json and preprocess.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_decode import MACHINE_NOTE, cpu_model  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def float_arithmetic(images: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The pre-9f1b5f6 `preprocess_batch` body: four passes of float arithmetic, then a transpose."""
    x = np.stack(images).astype(np.float32) * (1.0 / 255.0)
    x -= mean
    x /= std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def time_rounds(fn: Callable[[], np.ndarray], rounds: int) -> list[float]:
    """CPU seconds of each call of `fn`, after one warm-up call."""
    fn()
    seconds = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        seconds.append(time.process_time() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    from deepfake_detector.spec import ModelSpec, preprocess_batch

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    spec = ModelSpec(architecture="mobilenetv2", img_size=args.size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, size=(args.batch, args.size, args.size, 3), dtype=np.uint8))
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    methods = {
        "table lookup (preprocess_batch)": lambda: preprocess_batch(images, spec),
        "float arithmetic (before 9f1b5f6)": lambda: float_arithmetic(images, mean, std),
    }
    max_diff = float(
        np.abs(methods["table lookup (preprocess_batch)"]() - float_arithmetic(images, mean, std)).max()
    )
    if max_diff > 1e-5:
        raise SystemExit(f"bench_preprocess: outputs differ by {max_diff}")
    load_before = list(os.getloadavg())
    results = {}
    for name, fn in methods.items():
        seconds = time_rounds(fn, args.rounds)
        results[name] = {
            "cpu_ms_per_image_best": round(min(seconds) / args.batch * 1000, 3),
            "cpu_ms_per_image_median": round(statistics.median(seconds) / args.batch * 1000, 3),
        }
    baseline = results["float arithmetic (before 9f1b5f6)"]["cpu_ms_per_image_best"]
    for r in results.values():
        r["speedup"] = round(baseline / r["cpu_ms_per_image_best"], 2)
    report = {
        "cpu": cpu_model(),
        "niceness": os.nice(0),
        "machine_note": MACHINE_NOTE,
        "batch": args.batch,
        "size": args.size,
        "rounds": args.rounds,
        "max_abs_diff": max_diff,
        "load_average_before_after": [
            [round(v, 2) for v in load_before],
            [round(v, 2) for v in os.getloadavg()],
        ],
        "results": results,
    }
    write(report, args.out)


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "preprocess.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Pre-processing of a batch of {report['batch']} RGB uint8 images at {report['size']} px into "
        f"float32 NCHW, one core of {report['cpu']}, niceness {report['niceness']}, best of "
        f"{report['rounds']} rounds (CPU time). {report['machine_note']} Load average before/after "
        f"{report['load_average_before_after'][0]} / {report['load_average_before_after'][1]}. "
        f"Outputs agree to {report['max_abs_diff']:.1e}.",
        "",
        "| method | CPU ms/image (best) | (median) | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, r in report["results"].items():
        lines.append(
            f"| {name} | {r['cpu_ms_per_image_best']} | {r['cpu_ms_per_image_median']} | {r['speedup']}x |"
        )
    (out / "preprocess.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
