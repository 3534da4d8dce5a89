"""End-to-end speed of a model beside its encoder's own batched throughput, in one run.

    python benchmarks/bench_default_speed.py [--model default] [--images 2916]

1. encoder alone: the CLIP encoder (the model's feature set) on face regions already cut and
   held in memory, batches of 64 (what no pipeline can beat);
2. end to end: `Detector.predict` on the same image files (decode, face finding, region cutting,
   CLIP + head, the fused CNN), workers overlapping decode and face finding with inference;
3. `deepfake-detector predict` on the whole folder (all 2,916 dfdc Test images by default; process
   start and model load included): the check of issue 15 (within 80% of the encoder alone).
Writes benchmarks/results/default_speed.{json,md} with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepfake_detector.data.crop import dataset_region
from deepfake_detector.data.images import load_image
from deepfake_detector.inference import Detector


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
        platform.processor(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default="../shared/data/dfdc/Test", type=Path)
    parser.add_argument("--images", type=int, default=2916, help="images for steps 1 and 2")
    parser.add_argument("--out", default="benchmarks/results/default_speed")
    args = parser.parse_args()
    files = sorted(str(p) for p in args.data.rglob("*.jpg"))[: args.images]
    detector = Detector.load(args.model)
    encoder = getattr(getattr(detector.engine, "clip", detector.engine), "encoder", None)
    if encoder is None:
        raise SystemExit(f"{args.model}: not a CLIP model (no encoder to compare with)")
    spec = detector.spec
    crops = [dataset_region(load_image(f), spec.crop_spec, spec.img_size)[0] for f in files]
    encoder.encode(crops[:4])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(crops), 64):
        encoder.encode(crops[i : i + 64])
    encoder_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = detector.predict(files, faces="auto", batch_size=64, workers=2)
    e2e_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.csv"
        command = [
            sys.executable,
            "-m",
            "deepfake_detector",
            "predict",
            str(args.data),
            "--model",
            args.model,
        ]
        command += ["--format", "csv", "--out", str(out)]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        cli_s = time.perf_counter() - started
        cli_rows = sum(1 for _ in out.open()) - 1
    n = len(files)
    result = {
        "cpu": cpu_name(),
        "model": args.model,
        "images": n,
        "encoder_img_per_s": n / encoder_s,
        "end_to_end_img_per_s": n / e2e_s,
        "end_to_end_vs_encoder": encoder_s / e2e_s,
        "cli_images": cli_rows,
        "cli_img_per_s": cli_rows / cli_s,
        "scored": int(sum(r.prob_fake is not None for r in rows)),
        "mean_prob_fake": float(np.mean([r.prob_fake for r in rows if r.prob_fake is not None])),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    path.with_suffix(".md").write_text(
        "\n".join(
            [
                f"# Speed of `{args.model}` (`python benchmarks/bench_default_speed.py`)",
                "",
                f"CPU: {result['cpu']}; {n} dfdc Test images; 2 threads.",
                "",
                "| what | img/s |",
                "|---|---|",
                f"| CLIP encoder alone, regions in memory, batches of 64 | {result['encoder_img_per_s']:.1f} |",
                f"| `Detector.predict`, end to end | {result['end_to_end_img_per_s']:.1f} |",
                f"| `predict` command, {cli_rows} rows, start-up included | {result['cli_img_per_s']:.1f} |",
                "",
                f"End to end reaches {result['end_to_end_vs_encoder']:.0%} of the encoder's own throughput.",
            ]
        )
        + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
