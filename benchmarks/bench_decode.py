"""Decoding speed on one core: our `load_image` (at 128 px and at full size) vs plain Pillow.

    nice -n 15 python benchmarks/bench_decode.py [--data DIR ...] [--limit 2000] [--repeats 3]

By default it runs on the shared dfdc images (224x224: a 128 px target needs the full decode plus a
resize) and on stylegan-ffhq (256x256: the JPEG is decoded directly at 1/2 scale = 128 px).

The files are read into memory first, so the figures are decoder (and resize) cost, not disk. The
process is pinned to one CPU and OpenCV to one thread. Methods run interleaved, round by round, so a
busy machine slows them alike. Speeds are computed from this process's CPU time (what the decode
costs, unaffected by waiting for a shared CPU) and, for reference, from wall time; each method's
best round is reported.
Writes benchmarks/results/decode.json and decode.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent / ".." / "shared" / "data"
DEFAULT_DATA = [SHARED / "dfdc", SHARED / "stylegan-ffhq"]
SIZE = 128


def pil_decode(data: bytes, size: int | None) -> np.ndarray:
    """The plain Pillow way: open, convert to RGB, resize (bilinear)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    if size is not None:
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


def pil_draft_decode(data: bytes, size: int) -> np.ndarray:
    """Pillow with its own JPEG DCT scaling (`draft`) before the resize: the best Pillow can do."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (size, size))
    return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


def methods() -> dict[str, tuple[Callable[[bytes], np.ndarray], str]]:
    from deepfake_detector.data.images import load_image

    return {
        "load_image 128": (lambda d: load_image(d, size=SIZE), "PIL 128"),
        "PIL 128": (lambda d: pil_decode(d, SIZE), "PIL 128"),
        "PIL+draft 128": (lambda d: pil_draft_decode(d, SIZE), "PIL 128"),
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
        "cpu": platform.processor() or platform.machine(),
        "cores_used": 1,
        "repeats": args.repeats,
        "datasets": datasets,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Images decoded per second on one core, best of {args.repeats} interleaved rounds, files in memory. "
        "CPU-time speeds are the decode cost; wall-time speeds depend on how busy the machine was "
        "(load average shown).",
        "",
    ]
    for d in datasets:
        lines += [
            f"**{d['data']}**: {d['images']} images, mean {d['bytes_mean']} bytes, sizes "
            f"{', '.join(d['example_sizes'])}; load average before/after {d['load_average_before']} / "
            f"{d['load_average_after']}",
            "",
            "| method | images per CPU-second (best) | (median) | CPU ms/image "
            "| images per wall-second (best) | speed-up (CPU time) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, r in d["results"].items():
            lines.append(
                f"| {name} | {r['images_per_cpu_s']} | {r['images_per_cpu_s_median']} "
                f"| {r['cpu_ms_per_image']} | {r['images_per_wall_s']} | {r['speedup']}x {r['speedup_vs']} |"
            )
        lines.append("")
    (args.out / "decode.md").write_text("\n".join(lines))
    print("\n".join(lines))


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
