"""The dataset figures the README quotes, from one `deepfake-detector eda` run.

    nice -n 10 python benchmarks/eda_counts.py [--data ../shared/data/dfdc] [--from EDA_OUT]

Runs `deepfake-detector eda DATA --out TMP --workers 1` (about 80 CPU-seconds for dfdc's 21,412
images) and keeps the small part of its summary.json that the README quotes: counts per split and
class, unreadable files, exact and near duplicate groups (across splits, across classes), image
sizes, formats and JPEG qualities, flagged shortcut properties and the warnings. `--from` reads an
existing eda output folder instead of running eda again. Writes benchmarks/results/eda_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / ".." / "shared" / "data" / "dfdc"


def run_eda(data: Path, out: Path) -> None:
    """Run the eda command as a user would."""
    command = [
        sys.executable,
        "-m",
        "deepfake_detector",
        "eda",
        str(data),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"eda_counts: eda failed on {data}: {last}")


def per_class(properties: dict[str, Any], key: str) -> dict[str, Any]:
    return {label: props.get(key) for label, props in properties.items()}


def extract(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures the README quotes, named as in summary.json."""
    properties = summary["properties"]
    return {
        "counts": summary["counts"],
        "n_files": summary["n_files"],
        "unreadable": len(summary["unreadable"]),
        "duplicates": summary["duplicates"]["totals"],
        "near_max_distance": summary["duplicates"].get("near_max_distance"),
        "resolution": per_class(properties, "resolution"),
        "format": per_class(properties, "format"),
        "jpeg_quality_most_common": {
            label: props["jpeg_quality"].get("most_common") for label, props in properties.items()
        },
        "shortcut_flagged": [c["property"] for c in summary["shortcut_checks"] if c["flagged"]],
        "warnings": summary["warnings"],
        "eda_runtime_s": summary.get("runtime_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--from", dest="existing", type=Path, help="An existing eda --out folder.")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        eda_out = args.existing or Path(tmp) / "eda"
        if args.existing is None:
            run_eda(args.data, eda_out)
        summary_path = eda_out / "summary.json"
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"eda_counts: cannot read {summary_path} ({exc})") from exc
    from bench_decode import cpu_model

    report = {
        "command": f"deepfake-detector eda {summary['root']} --out OUT --workers 1",
        "cpu": cpu_model(),
        **extract(summary),
    }
    name = Path(str(summary["root"])).name
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"eda_{name}.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{target}: {json.dumps(report['counts'])}, duplicates {json.dumps(report['duplicates'])}")


if __name__ == "__main__":
    main()
