"""`make demo`: the notebook's whole pipeline, as commands, on one dataset.

eda -> a short training of the default preset (on DATA and, when it sits beside it, stylegan-ffhq)
-> evaluate (with robustness) -> predictions on six
test images -> conclusion.html linking every report and stating the measured results.

    python scripts/demo.py [DATA] [OUT]      (defaults: ../shared/data/dfdc, demo-out)
"""

from __future__ import annotations

import html
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "deepfake_detector"]
KAGGLE_HINT = """No dataset found at {data}.

Get the Kaggle "Deepfake and real images" dataset (190k face crops, Train/Validation/Test x Fake/Real):

    pip install kagglehub
    python -c "import kagglehub; print(kagglehub.dataset_download('manjilkarki/deepfake-and-real-images'))"

then run:  make demo DATA=<the printed path>/Dataset
"""


def run(step: str, args: list[str], log: Path) -> float:
    """Run one CLI step, echoing it; returns seconds. Exit codes 0/1 (some bad files) are fine."""
    print(f"\n==> {step}: deepfake-detector {' '.join(shlex.quote(a) for a in args)}", flush=True)
    start = time.perf_counter()
    with open(log, "a") as fh:
        proc = subprocess.run([*CLI, *args], stdout=subprocess.PIPE, stderr=fh, text=True)
    print(proc.stdout, end="")
    if proc.returncode not in (0, 1):
        sys.exit(f"step '{step}' failed with exit code {proc.returncode}; see {log}")
    return time.perf_counter() - start


def pick_six(data: Path) -> list[str]:
    """Three fake and three real test images, as the notebook's step 6 shows."""
    from deepfake_detector.data import discover_split

    test = discover_split(data, "test")
    fakes = [s.path for s in test if s.label == 1][:3]
    reals = [s.path for s in test if s.label == 0][:3]
    return fakes + reals


def metric_rows(metrics: dict) -> str:
    keys = ["roc_auc", "accuracy", "balanced_accuracy", "f1", "eer", "ece", "threshold", "n_real", "n_fake"]
    head = "".join(f"<th>{k}</th>" for k in keys)
    rows = []
    for name, m in metrics.items():
        cells = "".join(f"<td>{_fmt(m.get(k))}</td>" for k in keys)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>dataset</th>{head}</tr>{''.join(rows)}</table>"


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def write_conclusion(out: Path, data: Path, timings: dict[str, float], sections: dict[str, Path]) -> Path:
    short = json.loads((out / "eval-short" / "metrics.json").read_text())
    shipped = json.loads((out / "eval-default" / "metrics.json").read_text())
    eda = json.loads((out / "eda" / "summary.json").read_text())
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line]
    exact = eda.get("duplicates", {}).get("exact", [])
    pred_rows = "".join(
        f"<tr><td>{html.escape(os.path.basename(p['path']))}</td><td>{'Fake' if '/Fake/' in p['path'] else 'Real'}"
        f"</td><td><b>{html.escape(str(p['label']))}</b></td><td>{_fmt(p.get('confidence'))}</td></tr>"
        for p in predictions
    )
    links = "".join(
        f'<li><a href="{html.escape(str(path.relative_to(out)))}">{html.escape(name)}</a></li>'
        for name, path in sections.items()
    )
    times = "".join(f"<li>{html.escape(k)}: {v:.0f} s</li>" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>deepfake-detector demo: conclusion</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>
<h1>Conclusion: {html.escape(data.name)}</h1>
<p>Every number below was measured by this run (<code>make demo DATA={html.escape(str(data))}</code>).</p>
<h2>Data</h2><p>Counts: {html.escape(json.dumps(eda.get("counts")))}. Exact duplicate groups: {len(exact)}
(leakage across splits is listed in the EDA report). Unreadable files: {len(eda.get("unreadable", []))}.</p>
<h2>The shipped default model on the test split</h2>{metric_rows(shipped)}
<h2>A short training of the default preset in this run</h2>{metric_rows(short)}
<p>A short run is a smoke test of the pipeline, not the shipped model's recipe length.</p>
<h2>Six test images (the notebook's step 6), shipped default model</h2>
<table><tr><th>file</th><th>truth</th><th>verdict</th><th>confidence</th></tr>{pred_rows}</table>
<h2>Reports</h2><ul>{links}</ul><h2>Time per step</h2><ul>{times}</ul></body></html>"""
    path = out / "conclusion.html"
    path.write_text(page)
    return path


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/dfdc")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "demo-out")
    if not data.is_dir():
        print(KAGGLE_HINT.format(data=data))
        return
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    shutil.rmtree(out / "run", ignore_errors=True)  # the short training starts fresh on every demo
    # A second kind of fake beside the data (the shared stylegan-ffhq): trained on together, scored apart.
    others = [str(p) for p in [data.parent / "stylegan-ffhq"] if p.is_dir() and p.resolve() != data.resolve()]
    timings = {
        "eda": run("1. explore the data", ["eda", str(data), "--out", str(out / "eda")], log),
        "train": run(
            "2-5. short training of the default preset (CLIP features + MLP head, fused with the fast CNN)",
            [
                "train",
                str(data),
                *others,
                "--preset",
                "default",
                "--out",
                str(out / "run"),
                "--limit-per-class",
                "200",
                "--quiet",
            ],
            log,
        ),
    }
    timings["evaluate short run"] = run(
        "evaluate the short run with robustness",
        [
            "evaluate",
            str(out / "run"),
            str(data),
            "--out",
            str(out / "eval-short"),
            "--robustness",
            "--limit-per-class",
            "60",
        ],
        log,
    )
    timings["evaluate default"] = run(
        "evaluate the shipped default model (cross-dataset)",
        ["evaluate", "default", str(data), *others, "--out", str(out / "eval-default")],
        log,
    )
    timings["predict"] = run(
        "6. predict six test images",
        [
            "predict",
            *pick_six(data),
            "--model",
            "default",
            "--format",
            "jsonl",
            "--out",
            str(out / "predictions.jsonl"),
        ],
        log,
    )
    subprocess.run([*CLI, "predict", *pick_six(data), "--model", "default"], check=False)
    sections = {
        "EDA report": out / "eda" / "report.html",
        "Model of the short run (its spec and per-source validation metrics)": out / "run" / "model.json",
        "Evaluation of the short run (with robustness)": out / "eval-short" / "report.html",
        "Evaluation of the shipped default model": out / "eval-default" / "report.html",
        "Predictions (JSONL)": out / "predictions.jsonl",
    }
    path = write_conclusion(out, data, timings, sections)
    print(f"\nconclusion: {path}")


if __name__ == "__main__":
    main()
