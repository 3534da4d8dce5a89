"""`make demo`: the notebook's whole pipeline, as commands, on one dataset.

eda -> a short training of the default preset (on DATA and, when it sits beside it, stylegan-ffhq)
-> evaluate (with robustness) -> predictions on six
test images -> conclusion.html linking every report and stating the measured results.

    python scripts/demo.py [DATA] [OUT]      (defaults: ../shared/data/dfdc, demo-out)
"""

from __future__ import annotations

import json
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


def pick_six(data: Path) -> dict[str, str]:
    """Three fake and three real test images, as the notebook's step 6 shows: path -> true label."""
    from deepfake_detector.data import discover_split

    test = discover_split(data, "test")
    fakes = [s.path for s in test if s.label == 1][:3]
    reals = [s.path for s in test if s.label == 0][:3]
    return {**dict.fromkeys(fakes, "fake"), **dict.fromkeys(reals, "real")}


def write_conclusion(
    out: Path, data: Path, timings: dict[str, float], sections: dict[str, Path], truths: dict[str, str]
) -> Path:
    """conclusion.html from what the steps wrote (evaluation/conclusion.py renders it)."""
    from deepfake_detector.evaluation.conclusion import render_conclusion, thumbnail_uri

    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line]
    for row in predictions:
        row["thumbnail"] = thumbnail_uri(row["path"])
    page = render_conclusion(
        data_name=data.name,
        command=f"make demo DATA={data}",
        eda=json.loads((out / "eda" / "summary.json").read_text()),
        evaluations=[
            (
                "The shipped default model on the test split",
                json.loads((out / "eval-default" / "metrics.json").read_text()),
            ),
            (
                "A short training of the default preset in this run",
                json.loads((out / "eval-short" / "metrics.json").read_text()),
            ),
        ],
        predictions=predictions,
        truths=truths,
        links={name: str(path.relative_to(out)) for name, path in sections.items()},
        timings=timings,
    )
    path = out / "conclusion.html"
    path.write_text(page, encoding="utf-8")
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
    six = pick_six(data)
    timings["predict"] = run(
        "6. predict six test images",
        [
            "predict",
            *six,
            "--model",
            "default",
            "--format",
            "jsonl",
            "--out",
            str(out / "predictions.jsonl"),
        ],
        log,
    )
    subprocess.run([*CLI, "predict", *six, "--model", "default"], check=False)
    sections = {
        "EDA report": out / "eda" / "report.html",
        "Model of the short run (its spec and per-source validation metrics)": out / "run" / "model.json",
        "Evaluation of the short run (with robustness)": out / "eval-short" / "report.html",
        "Evaluation of the shipped default model": out / "eval-default" / "report.html",
        "Predictions (JSONL)": out / "predictions.jsonl",
    }
    path = write_conclusion(out, data, timings, sections, six)
    print(f"\nconclusion: {path}")


if __name__ == "__main__":
    main()
