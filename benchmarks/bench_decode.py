"""Decoding speed on one core: our `load_image` (at 128 px and at full size) vs Pillow.

    nice -n 10 python benchmarks/bench_decode.py [--data DIR ...] [--limit 2000] [--repeats 3]

Pillow is measured two ways: plain (`open` + `convert` + bilinear `resize`) and at its best, the path
`Image.thumbnail` uses: `draft` (libjpeg DCT scaling while decoding) + a box-filter `resize` with
`reducing_gap` (an integer `reduce` first when the image is much larger). `load_image` is compared
with Pillow's best path. By default it runs on the shared dfdc images (224x224: a 128 px target needs
the full decode plus a resize, DCT scaling cannot help) and on stylegan-ffhq (256x256: the JPEG is
decoded directly at 1/2 scale = 128 px).

The files are read into memory first, so the figures are decoder (and resize) cost, not disk. The
process is pinned to one CPU and OpenCV to one thread. Methods run interleaved, round by round, so a
busy machine slows them alike. Speeds are computed from this process's CPU time (what the decode
costs, less affected by waiting for a shared CPU) and, for reference, from wall time; each method's
best round is reported. The CPU model (`lscpu`), the process's niceness and the load average are
recorded with the results.
Writes benchmarks/results/decode.json and decode.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent / ".." / "shared" / "data"
DEFAULT_DATA = [SHARED / "dfdc", SHARED / "stylegan-ffhq"]
SIZE = 128
MACHINE_NOTE = (
    "Run under `nice -n 10` on a shared 2-core machine loaded by other jobs (trainings, tests), so "
    "wall-time figures are low and CPU-time figures carry some cache/frequency noise."
)


def pil_decode(data: bytes, size: int | None) -> np.ndarray:
    """The plain Pillow way: open, convert to RGB, resize (bilinear)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    if size is not None:
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


def pil_best_decode(data: bytes, size: int) -> np.ndarray:
    """Pillow's fastest path, as `Image.thumbnail` does it: JPEG DCT scaling while decoding
    (`draft`), then a box-filter (area) resize that first `reduce`s by an integer factor when the
    image is still over twice the target (`reducing_gap=2.0`)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (size, size))
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BOX, reducing_gap=2.0)
    return np.asarray(image)


def methods() -> dict[str, tuple[Callable[[bytes], np.ndarray], str]]:
    from deepfake_detector.data.images import load_image

    return {
        "load_image 128": (lambda d: load_image(d, size=SIZE), "PIL draft+reduce 128"),
        "PIL draft+reduce 128": (lambda d: pil_best_decode(d, SIZE), "PIL draft+reduce 128"),
        "PIL 128": (lambda d: pil_decode(d, SIZE), "PIL draft+reduce 128"),
        "load_image full": (lambda d: load_image(d), "PIL full"),
        "PIL full": (lambda d: pil_decode(d, None), "PIL full"),
    }


def pick_files(data: Path, limit: int, seed: int) -> list[Path]:
    from deepfake_detector.data.manifest import discover

    manifest = discover(data)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(manifest), size=min(limit, len(manifest)), replace=False)
    return [Path(manifest.samples[i].path) for i in sorted(chosen.tolist())]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, nargs="+", default=[p for p in DEFAULT_DATA if p.is_dir()])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    table = methods()
    datasets = [measure(table, data, args.limit, args.repeats, args.seed) for data in args.data]
    report = {
        "cpu": cpu_model(),
        "cores_used": 1,
        "niceness": os.nice(0) if hasattr(os, "nice") else None,
        "machine_note": MACHINE_NOTE,
        "repeats": args.repeats,
        "datasets": datasets,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Images decoded per second on one core of {report['cpu']}, best of {args.repeats} interleaved "
        f"rounds, files in memory, process niceness {report['niceness']}. {MACHINE_NOTE} CPU-time "
        "speeds are the decode cost; wall-time speeds depend on how busy the machine was (load average "
        "shown). Speed-ups are in CPU time against Pillow's best path (`draft` + box `resize` with "
        "`reducing_gap`) at 128 px and against plain Pillow at full size.",
        "",
    ]
    for d in datasets:
        lines += [
            f"**{d['data']}**: {d['images']} images, mean {d['bytes_mean']} bytes, sizes "
            f"{', '.join(d['example_sizes'])}; load average before/after {d['load_average_before']} / "
            f"{d['load_average_after']}",
            "",
            "| method | images per CPU-second (best) | (median) | CPU ms/image "
            "| images per wall-second (best) | speed-up (CPU time) | mean abs. pixel diff. vs that |",
            "|---|---:|---:|---:|---:|---|---:|",
        ]
        for name, r in d["results"].items():
            lines.append(
                f"| {name} | {r['images_per_cpu_s']} | {r['images_per_cpu_s_median']} "
                f"| {r['cpu_ms_per_image']} | {r['images_per_wall_s']} | {r['speedup']}x {r['speedup_vs']} "
                f"| {r['mean_abs_diff_vs_baseline']} |"
            )
        lines.append("")
    (args.out / "decode.md").write_text("\n".join(lines))
    print("\n".join(lines))


def cpu_model() -> str:
    """The CPU's model name as `lscpu` reports it (else /proc/cpuinfo, else the platform)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def _mean_abs_diff(
    decode: Callable[[bytes], np.ndarray], baseline: Callable[[bytes], np.ndarray], blobs: list[bytes]
) -> float:
    """Mean absolute pixel difference (0-255) between two methods' outputs: they must agree."""
    diffs = []
    for blob in blobs:
        a, b = decode(blob), baseline(blob)
        if a.shape != b.shape:
            raise SystemExit(f"bench_decode: output shapes differ ({a.shape} vs {b.shape})")
        diffs.append(float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()))
    return round(statistics.fmean(diffs), 2)


def _load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def measure(table: dict, data: Path, limit: int, repeats: int, seed: int) -> dict:
    """Every method over the same in-memory files, interleaved round by round."""
    files = pick_files(data, limit, seed)
    blobs = [f.read_bytes() for f in files]
    for decode, _ in table.values():  # warm-up: imports, first-call costs
        decode(blobs[0])
    cpu_seconds: dict[str, list[float]] = {name: [] for name in table}
    wall_seconds: dict[str, list[float]] = {name: [] for name in table}
    load_before = _load_average()
    for _ in range(repeats):
        for name, (decode, _) in table.items():
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            for blob in blobs:
                decode(blob)
            cpu_seconds[name].append(time.process_time() - cpu_started)
            wall_seconds[name].append(time.perf_counter() - wall_started)
    n = len(blobs)
    results = {}
    for name, (_, baseline) in table.items():
        best = min(cpu_seconds[name])
        results[name] = {
            "images_per_cpu_s": round(n / best, 1),
            "images_per_cpu_s_median": round(n / statistics.median(cpu_seconds[name]), 1),
            "cpu_ms_per_image": round(best / n * 1000, 3),
            "images_per_wall_s": round(n / min(wall_seconds[name]), 1),
            "speedup_vs": baseline,
            "speedup": round(min(cpu_seconds[baseline]) / best, 2),
            "mean_abs_diff_vs_baseline": _mean_abs_diff(table[name][0], table[baseline][0], blobs[:50]),
        }
    sizes = {tuple(pil_decode(b, None).shape[:2]) for b in blobs[:50]}
    return {
        "data": str(data),
        "images": n,
        "bytes_mean": round(sum(map(len, blobs)) / n),
        "example_sizes": sorted(f"{w}x{h}" for h, w in sizes),
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "results": results,
    }


if __name__ == "__main__":
    main()
