"""The `seed` (notebook) recipe vs the `default` recipe, trained on the same data, judged the same way.

Both models are evaluated by the same `evaluate` command on dfdc Test (never used for training or
tuning) and on stylegan-ffhq (a generator neither model saw), with the robustness suite:

    deepfake-detector train ../shared/data/dfdc --preset default --out runs/default-dfdc
    deepfake-detector train ../shared/data/dfdc --preset seed --out runs/seed-dfdc
    python benchmarks/compare_presets.py            # runs the two evaluations, writes the tables

Writes benchmarks/results/presets.json and presets.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
KEYS = ["roc_auc", "accuracy", "balanced_accuracy", "f1", "eer", "ece", "log_loss", "brier", "threshold"]


def evaluate(run: Path, datasets: list[str], out: Path, reuse: bool) -> dict:
    if not (reuse and (out / "metrics.json").is_file()):
        cmd = [sys.executable, "-m", "deepfake_detector", "evaluate", str(run), *datasets, "--out", str(out)]
        subprocess.run([*cmd, "--robustness"], check=True)
    return json.loads((out / "metrics.json").read_text())


def cpu_minutes(run: Path) -> float:
    with open(run / "metrics.csv", newline="") as fh:
        return round(sum(float(r["epoch_seconds"]) for r in csv.DictReader(fh)) / 60, 1)


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", nargs=2, type=Path, default=[Path("runs/seed-dfdc"), Path("runs/default-dfdc")]
    )
    parser.add_argument("--data", nargs="+", default=["../shared/data/dfdc", "../shared/data/stylegan-ffhq"])
    parser.add_argument(
        "--reuse", action="store_true", help="reuse runs/eval-<preset>/metrics.json if present"
    )
    args = parser.parse_args()

    results = {}
    for run in args.runs:
        preset = json.loads((run / "model.json").read_text())["preset"]
        metrics = evaluate(run, args.data, Path("runs") / f"eval-{preset}", args.reuse)
        val = json.loads((run / "model.json").read_text())["metrics"]["val"]
        results[preset] = {
            "run": str(run),
            "train_wall_minutes": cpu_minutes(run),
            "val": val,
            "test": metrics,
        }

    lines = ["| preset | dataset | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 2) + "|"]
    for preset, r in results.items():
        lines.append(
            f"| {preset} | dfdc Validation | " + " | ".join(fmt(r["val"].get(k)) for k in KEYS) + " |"
        )
        for name, m in r["test"].items():
            lines.append(f"| {preset} | {name} (test) | " + " | ".join(fmt(m.get(k)) for k in KEYS) + " |")
    lines += ["", "| preset | training wall minutes on 2 CPU cores |", "|---|---|"]
    lines += [f"| {p} | {r['train_wall_minutes']} |" for p, r in results.items()]
    lines += ["", "ROC-AUC under perturbations (dfdc Test):", ""]
    for preset, r in results.items():
        robustness = r["test"].get("dfdc", {}).get("robustness") or {}
        cells = [
            f"{kind} {sev}: {fmt(m.get('roc_auc'))}"
            for kind, sevs in robustness.items()
            for sev, m in sevs.items()
        ]
        lines.append(f"- {preset}: " + ", ".join(cells))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "presets.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "presets.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
