"""Leave-one-source-out on the shared sources: does a recipe detect a kind of fake it never saw?

    python benchmarks/generalization.py [--limit-per-class 1000] [--recipes seed,fast,clip-linear,clip-mlp,default]

For every recipe (a training preset) and every training set (dfdc alone, stylegan-ffhq alone, both)
it trains with `Detector.train` (the `deepfake-detector train` command) on the Train splits, capped
at --limit-per-class images per class and split, selects and calibrates on their Validation
splits, and scores both sources' Test splits with `Detector.evaluate`. CNN presets train on one
source only, so their "both" row is left out. The shipped `default` and `fast` models are scored
too, as shipped. Results: benchmarks/results/generalization.{json,md}. Everything runs on the
CPU; the CLIP features are cached, so the CLIP rows cost seconds after the first.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from deepfake_detector.inference import Detector

SOURCES = {"dfdc": "dfdc", "stylegan-ffhq": "stylegan-ffhq"}
TRAINING_SETS = (("dfdc",), ("stylegan-ffhq",), ("dfdc", "stylegan-ffhq"))
CNN_PRESETS = {"seed", "fast"}


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
        platform.processor(),
    )


def score(detector: Detector, data: Path, out: Path, limit: int | None) -> dict[str, dict[str, float]]:
    roots = [str(data / name) for name in SOURCES]
    metrics = detector.evaluate(roots, out, split="test", limit=limit, write_report=False)
    return {name: {k: metrics[name][k] for k in ("roc_auc", "accuracy", "ece")} for name in SOURCES}


def _cell(row: dict, name: str, key: str) -> str:
    """A figure, in italics when the row's model never saw that source."""
    value = f"{row[name][key]:.3f}"
    seen = row["trained_on"] == "as shipped" or name in row["trained_on"].split("+")
    return value if seen else f"*{value}*"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data", type=Path)
    parser.add_argument("--limit-per-class", type=int, default=1000)
    parser.add_argument("--test-limit", type=int, default=None, help="Test images per class (default: all)")
    parser.add_argument("--recipes", default="seed,fast,clip-linear,clip-mlp,default")
    parser.add_argument("--cache", default="/tmp/dfd-generalization-cache")
    parser.add_argument("--out", default="benchmarks/results/generalization")
    args = parser.parse_args()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="dfd-generalization-"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = out.with_suffix(".rows.jsonl")  # each row as it comes, so a long run loses nothing
    progress.write_text("")
    for shipped in ("default", "fast"):
        rows.append(
            {
                "recipe": f"shipped {shipped}",
                "trained_on": "as shipped",
                **score(Detector.load(shipped), args.data, work / shipped, args.test_limit),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        with progress.open("a") as fh:
            fh.write(json.dumps(rows[-1]) + "\n")
    for recipe in args.recipes.split(","):
        for sources in TRAINING_SETS:
            if recipe in CNN_PRESETS and len(sources) > 1:
                continue
            run = work / f"{recipe}-{'+'.join(sources)}"
            started = time.perf_counter()
            overrides = {"limit_per_class": str(args.limit_per_class), "cache_dir": args.cache}
            detector = Detector.train(
                [str(args.data / s) for s in sources], preset=recipe, out=run, overrides=overrides
            )
            seconds = time.perf_counter() - started
            row = {"recipe": recipe, "trained_on": "+".join(sources), "train_s": round(seconds, 1)}
            rows.append({**row, **score(detector, args.data, run / "eval", args.test_limit)})
            print(json.dumps(rows[-1]), flush=True)
            with progress.open("a") as fh:
                fh.write(json.dumps(rows[-1]) + "\n")
    results = {
        "cpu": cpu_name(),
        "limit_per_class": args.limit_per_class,
        "test_limit": args.test_limit,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Generalisation: leave one source out (`python benchmarks/generalization.py`)",
        "",
        f"CPU: {results['cpu']}. Train splits capped at {args.limit_per_class} per class; Test splits "
        f"{'all' if args.test_limit is None else args.test_limit}; every model through `Detector.evaluate` "
        "(the model's crop spec, faces auto). An unseen source is in *italics*.",
        "",
        "| recipe | trained on | dfdc Test AUC | stylegan-ffhq Test AUC | dfdc ECE | stylegan ECE | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['trained_on']} | {_cell(r, 'dfdc', 'roc_auc')} | "
            f"{_cell(r, 'stylegan-ffhq', 'roc_auc')} | {_cell(r, 'dfdc', 'ece')} | "
            f"{_cell(r, 'stylegan-ffhq', 'ece')} | {r.get('train_s', '')} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
