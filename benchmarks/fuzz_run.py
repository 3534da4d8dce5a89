"""A timed coverage-guided fuzzing run of the image loader, with its numbers kept.

    pip install atheris
    nice -n 10 python benchmarks/fuzz_run.py [--seconds 60]

Runs `python fuzz/fuzz_load_image.py -max_total_time=SECONDS -print_final_stats=1` (atheris, one
process, seeded with its own small files), reads libFuzzer's final statistics and writes
benchmarks/results/fuzz.json: executions, seconds, executions per second, peak RSS, the exit
status and whether a crash input was written (libFuzzer exits non-zero and saves `crash-*` when
the loader breaks its contract). Executions depend on how busy the CPU was: the load average is
recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent / "fuzz" / "fuzz_load_image.py"
STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.MULTILINE)
DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def fuzz(seconds: int, workdir: Path) -> tuple[int, str]:
    """Run the harness in `workdir` (where libFuzzer writes crash files); exit status and stderr."""
    command = [sys.executable, str(HARNESS), f"-max_total_time={seconds}", "-print_final_stats=1"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=seconds + 300)
    return done.returncode, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    from bench_decode import MACHINE_NOTE, cpu_model

    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        status, log = fuzz(args.seconds, Path(tmp))
        crashes = sorted(p.name for p in Path(tmp).glob("crash-*"))
    stats = {name: int(value) for name, value in STAT.findall(log)}
    if "number_of_executed_units" not in stats:
        tail = log.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"fuzz_run: {HARNESS} gave no final stats (exit {status}): {tail[0]}")
    executions = stats["number_of_executed_units"]
    done = DONE.search(log)
    ran_s = int(done.group(2)) if done else args.seconds
    report = {
        "command": f"python fuzz/fuzz_load_image.py -max_total_time={args.seconds} -print_final_stats=1",
        "cpu": cpu_model(),
        "niceness": os.nice(0),
        "machine_note": MACHINE_NOTE,
        "load_average_before_after": [load_before, [round(v, 2) for v in os.getloadavg()]],
        "seconds": ran_s,
        "executions": executions,
        "executions_per_s": round(executions / max(ran_s, 1), 1),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        "new_units_added": stats.get("new_units_added"),
        "exit_status": status,
        "crash_files": crashes,
        "crashed": status != 0 or bool(crashes),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
