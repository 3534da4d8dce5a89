"""Memory of `deepfake-detector predict` on a long video: does it stay flat over a 10-minute 1080p file?

    nice -n 15 python benchmarks/bench_video_memory.py [--minutes 10] [--fps 25] [--modes frames32,every25]

1. Synthesises a 1920x1080 mp4v video in /tmp (--minutes long at --fps): a fixed textured
   background with a dfdc face crop (scaled to 320 px) drifting slowly across it, so there is one
   person to find and track. The file is reused by later runs with the same settings.
2. For each mode runs the real CLI in a subprocess, `deepfake-detector predict VIDEO --format json`
   with `--frames 32` (uniform: seeks across the long gaps) or `--every 25` (one frame per second:
   every frame of the file is decoded, 1 in 25 scored), and samples the child's resident memory
   (VmRSS from /proc) every --interval seconds, with its peak (VmHWM) at the end.
3. Reports per mode: wall and CPU time, frames decoded and scored, RSS at 10/50/90% of the run, the
   peak, and the growth after warm-up (the highest RSS of the second half minus the median of the
   first quarter's RSS after the model is loaded); the verdict. For scale: keeping the decoded frames
   would need frames x 1920 x 1080 x 3 bytes.

Writes benchmarks/results/video_memory.json, video_memory.md and video_memory.png (RSS over time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_FACE = HERE.parent / ".." / "shared" / "data" / "dfdc" / "Test" / "Real"
DEFAULT_OUT = HERE / "results"
WIDTH, HEIGHT = 1920, 1080
FACE_SIDE = 320
MODES = {"frames32": ["--frames", "32"], "every25": ["--every", "25"]}
MB = 1024 * 1024


# ---------------------------------------------------------------------------- the video
def face_image(folder: Path) -> np.ndarray:
    from deepfake_detector.data.images import load_image, resize_image

    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise SystemExit(f"no face images in {folder} (pass --faces DIR)")
    return resize_image(load_image(files[0]), FACE_SIDE)


def synthesise(path: Path, face: np.ndarray, minutes: float, fps: float) -> dict[str, Any]:
    """Write the test video frame by frame (never more than one frame in memory)."""
    import cv2

    rng = np.random.default_rng(0)
    low = rng.integers(60, 200, size=(27, 48, 3), dtype=np.uint8)
    background = cv2.resize(low, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    frames = int(round(minutes * 60 * fps))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write mp4v video here")
    bgr_face = np.ascontiguousarray(face[..., ::-1])
    started = time.perf_counter()
    for i in range(frames):
        t = i / fps
        # A slow drift (at most ~30 px/s) so that faces one second apart overlap: one track.
        x = int(800 + 600 * np.sin(2 * np.pi * t / 120.0))
        y = int(380 + 200 * np.sin(2 * np.pi * t / 90.0))
        frame = background.copy()
        frame[y : y + FACE_SIDE, x : x + FACE_SIDE] = bgr_face
        writer.write(frame)
    writer.release()
    return {
        "path": str(path),
        "width": WIDTH,
        "height": HEIGHT,
        "fps": fps,
        "frames": frames,
        "minutes": minutes,
        "codec": "mp4v",
        "bytes": path.stat().st_size,
        "write_s": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------------------- measuring a run
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in bytes (empty once it has exited)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def run_mode(video: Path, mode: str, model: str, interval: float, workdir: Path) -> dict[str, Any]:
    out_json = workdir / f"{mode}.json"
    command = [
        sys.executable,
        "-c",
        "from deepfake_detector.cli import app; app()",
        "predict",
        str(video),
        "--model",
        model,
        "--format",
        "json",
        "--out",
        str(out_json),
        "--video-out",
        str(workdir / "reports"),
        *MODES[mode],
    ]
    samples: list[tuple[float, int]] = []
    peak = {"VmHWM": 0}
    started = time.perf_counter()
    before = os.times()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            status = proc_status(process.pid)
            if "VmRSS" in status:
                samples.append((time.perf_counter() - started, status["VmRSS"]))
                peak["VmHWM"] = max(peak["VmHWM"], status.get("VmHWM", 0))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    after = os.times()
    if process.returncode != 0:
        raise SystemExit(
            f"{mode}: predict exited with {process.returncode}:\n{output.decode(errors='replace')}"
        )
    doc = json.loads(out_json.read_text())
    row = doc["predictions"][0]
    details = row["video"]
    rss = np.array([r for _, r in samples], dtype=np.float64) / MB
    times = np.array([t for t, _ in samples])
    loaded = _after_model_load(rss)
    quarter = rss[loaded : loaded + max(1, (len(rss) - loaded) // 4)]
    second_half = rss[len(rss) // 2 :]
    return {
        "mode": mode,
        "args": MODES[mode],
        "wall_s": round(wall, 1),
        "cpu_s": round(
            (after.children_user - before.children_user) + (after.children_system - before.children_system), 1
        ),
        "frames_in_video": details["frame_count"],
        "frames_decoded": details["frame_count"] if mode.startswith("every") else None,
        "frames_scored": details["sampled_frames"],
        "frames_with_faces": details["frames_with_faces"],
        "tracks": len(details["tracks"]),
        "pooled": details["pooled"],
        "label": row["label"],
        "prob_fake": row["prob_fake"],
        "note": row["note"],
        "samples": len(samples),
        "rss_mb_at_10_50_90_pct": [
            round(float(rss[min(len(rss) - 1, int(q * len(rss)))]), 1) for q in (0.1, 0.5, 0.9)
        ],
        "rss_mb_median_first_quarter": round(float(np.median(quarter)), 1),
        "rss_mb_max_second_half": round(float(second_half.max()), 1),
        "growth_after_warmup_mb": round(float(second_half.max() - np.median(quarter)), 1),
        "peak_rss_mb": round(peak["VmHWM"] / MB, 1),
        "keeping_frames_would_need_gb": round(details["frame_count"] * WIDTH * HEIGHT * 3 / 1024**3, 1)
        if mode.startswith("every")
        else round(details["sampled_frames"] * WIDTH * HEIGHT * 3 / 1024**3, 2),
        "series": _downsample(times, rss, 120),
    }


def _after_model_load(rss: np.ndarray) -> int:
    """Index of the first sample once start-up (imports, model load) is over: the first at which
    RSS has reached 90% of its overall median."""
    if len(rss) == 0:
        return 0
    target = 0.9 * float(np.median(rss))
    return int(np.argmax(rss >= target))


def _downsample(times: np.ndarray, rss: np.ndarray, points: int) -> list[list[float]]:
    count = min(len(times), points)
    idx = np.linspace(0, len(times) - 1, count).round().astype(int) if count else np.arange(0)
    return [[round(float(times[i]), 2), round(float(rss[i]), 1)] for i in idx]


# ---------------------------------------------------------------------------- report
def write_reports(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "video_memory.json").write_text(json.dumps(doc, indent=2) + "\n")
    video = doc["video"]
    lines = [
        "# Video memory: a 10-minute 1080p video through `deepfake-detector predict`",
        "",
        f"Video: {video['width']}x{video['height']} {video['codec']}, {video['minutes']:g} min at "
        f"{video['fps']:g} fps = {video['frames']:,} frames, {video['bytes'] / MB:.0f} MB "
        "(synthesised: a dfdc face crop drifting over a textured background). "
        f"Machine: {doc['machine']['cpus']} CPUs, load average before {doc['machine']['load_before']}. "
        f"Command: `{doc['command']}`.",
        "",
        "| mode | frames decoded | scored | wall s | CPU s | RSS at 10% / 50% / 90% of the run (MB) | "
        "peak RSS (MB) | growth after warm-up (MB) | frames kept would need | verdict |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for run in doc["runs"]:
        decoded = f"{run['frames_decoded']:,}" if run["frames_decoded"] else "seeks"
        r10, r50, r90 = run["rss_mb_at_10_50_90_pct"]
        lines.append(
            f"| `{' '.join(run['args'])}` | {decoded} | {run['frames_scored']} | {run['wall_s']} | {run['cpu_s']} | "
            f"{r10} / {r50} / {r90} | {run['peak_rss_mb']} | {run['growth_after_warmup_mb']} | "
            f"{run['keeping_frames_would_need_gb']} GB | {run['label']} {run['prob_fake']:.3f}, "
            f"{run['tracks']} track(s){' (pooled)' if run['pooled'] else ''} |"
        )
    lines += [
        "",
        "Growth after warm-up = the highest RSS in the second half of the run minus the median RSS of the "
        "first quarter after the model was loaded. RSS sampled every "
        f"{doc['interval_s']} s from /proc/PID/status; the series is in video_memory.json and plotted in "
        "video_memory.png.",
        "",
    ]
    (out / "video_memory.md").write_text("\n".join(lines))
    _plot(doc, out / "video_memory.png")


def _plot(doc: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for run in doc["runs"]:
        series = np.array(run["series"])
        if len(series):
            ax.plot(series[:, 0], series[:, 1], label=" ".join(run["args"]))
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"predict on a {doc['video']['minutes']:g}-minute 1080p video: resident memory")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--modes", default="frames32,every25", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--model", default="default")
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACE, help="folder of face crops to paste")
    parser.add_argument("--video", type=Path, default=None, help="video to write/reuse (default in /tmp)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-video", action="store_true", help="leave the synthesised video in place")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {', '.join(MODES)}")

    video = (
        args.video
        or Path(tempfile.gettempdir()) / f"bench_video_{args.minutes:g}min_{args.fps:g}fps_1080p.mp4"
    )
    info_path = video.with_suffix(".json")
    if video.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        print(f"reusing {video}", flush=True)
    else:
        print(f"writing {video} ({args.minutes:g} min, {args.fps:g} fps, 1080p) ...", flush=True)
        info = synthesise(video, face_image(args.faces), args.minutes, args.fps)
        info_path.write_text(json.dumps(info))
        print(f"  {info['frames']:,} frames, {info['bytes'] / MB:.0f} MB in {info['write_s']} s", flush=True)

    load_before = [round(x, 2) for x in os.getloadavg()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        for mode in modes:
            print(f"running {mode} ...", flush=True)
            run = run_mode(video, mode, args.model, args.interval, Path(tmp))
            print(
                f"  {run['wall_s']} s wall, peak RSS {run['peak_rss_mb']} MB, growth after warm-up "
                f"{run['growth_after_warmup_mb']} MB, {run['label']} {run['prob_fake']}",
                flush=True,
            )
            runs.append(run)
    doc = {
        "command": "python benchmarks/bench_video_memory.py " + " ".join(sys.argv[1:]),
        "video": info,
        "interval_s": args.interval,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "runs": runs,
    }
    write_reports(doc, args.out)
    print(f"wrote {args.out / 'video_memory.md'}", flush=True)
    if not args.keep_video:
        video.unlink(missing_ok=True)
        info_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
