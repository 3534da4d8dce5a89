"""Memory of `deepfake-detector predict` on a long video: does it stay flat over a 10-minute 1080p file?

    nice -n 15 python benchmarks/bench_video_memory.py [--minutes 10] [--fps 25] [--modes image,frames32,every25]

1. Synthesises a 1920x1080 mp4v video in /tmp (--minutes long at --fps): a fixed textured
   background with a dfdc face crop (scaled to 320 px) drifting slowly across it, so there is one
   person to find and track (--keep-video keeps it for the next run).
2. For each mode runs the real CLI in a subprocess, `deepfake-detector predict INPUT --format json`:
   `image` (one face image: start-up and model cost, the baseline), `frames32` (`--frames 32`,
   uniform: seeks across the long gaps) and `every25` (`--every 25`, one frame per second: every
   frame of the file is decoded, 1 in 25 scored). The parent samples the child's resident memory
   (VmRSS from /proc) every --interval seconds and its peak (VmHWM); the child, through a hook on
   the frame reader (inference.video.frames.iter_frames), also reports its RSS at each sampled
   frame, so memory can be read against the position in the video.
3. Reports per mode: wall and CPU time, frames decoded and scored, the peak RSS and its excess over
   the one-image baseline, RSS at 10/25/50/75/100% of the video, and the growth over the last 75%
   of the video (highest minus lowest RSS there; the first quarter holds the warm-up: ONNX Runtime's
   memory arena grows to the 64-face batches); the verdict. For scale: keeping the decoded frames
   would need frames x 1920 x 1080 x 3 bytes.

Writes benchmarks/results/video_memory.json, video_memory.md and video_memory.png (RSS over time
and over the video).
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
MODES = {"image": [], "frames32": ["--frames", "32"], "every25": ["--every", "25"]}
PROGRESS_TAG = "BENCH-FRAME"
# The child: the real CLI, with the frame reader wrapped to print "<tag> <frame> <RSS kB>" to stderr.
CHILD = f"""
import sys
from deepfake_detector.inference import video_scoring

def _rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

_read = video_scoring.iter_frames

def _traced(*args, **kwargs):
    for frame in _read(*args, **kwargs):
        print("{PROGRESS_TAG}", frame.index, _rss_kb(), file=sys.stderr, flush=True)
        yield frame

video_scoring.iter_frames = _traced
from deepfake_detector.cli import app
app()
"""
MB = 1024 * 1024


# ---------------------------------------------------------------------------- the video
def face_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise SystemExit(f"no face images in {folder} (pass --faces DIR)")
    return files[0]


def face_image(folder: Path) -> np.ndarray:
    from deepfake_detector.data.images import load_image, resize_image

    return resize_image(load_image(face_file(folder)), FACE_SIDE)


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


def run_mode(source: Path, mode: str, model: str, interval: float, workdir: Path) -> dict[str, Any]:
    out_json = workdir / f"{mode}.json"
    command = [
        sys.executable,
        "-c",
        CHILD,
        "predict",
        str(source),
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
    progress: list[tuple[int, float]] = []  # (frame, RSS MB) reported by the child
    other: list[str] = []
    peak = {"VmHWM": 0}
    started = time.perf_counter()
    before = os.times()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            status = proc_status(process.pid)
            if "VmRSS" in status:
                samples.append((time.perf_counter() - started, status["VmRSS"]))
                peak["VmHWM"] = max(peak["VmHWM"], status.get("VmHWM", 0))
            stop.wait(interval)

    def read_progress() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            parts = line.split()
            if len(parts) == 3 and parts[0] == PROGRESS_TAG:
                progress.append((int(parts[1]), int(parts[2]) / 1024))
            else:
                other.append(line)

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, read_progress)]
    for thread in threads:
        thread.start()
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    after = os.times()
    if process.returncode != 0:
        raise SystemExit(f"{mode}: predict exited with {process.returncode}:\n{''.join(other[-40:])}")
    row = json.loads(out_json.read_text())["predictions"][0]
    details = row.get("video") or {}
    rss = np.array([r for _, r in samples], dtype=np.float64) / MB
    times = np.array([t for t, _ in samples])
    frames = details.get("frame_count", 0)
    run: dict[str, Any] = {
        "mode": mode,
        "args": MODES[mode],
        "wall_s": round(wall, 1),
        "cpu_s": round(
            (after.children_user - before.children_user) + (after.children_system - before.children_system), 1
        ),
        "frames_in_video": frames,
        "frames_decoded": frames if mode.startswith("every") else None,
        "frames_scored": details.get("sampled_frames", 1),
        "frames_with_faces": details.get("frames_with_faces"),
        "tracks": len(details.get("tracks", [])) or len(row["faces"]),
        "pooled": details.get("pooled", False),
        "label": row["label"],
        "prob_fake": row["prob_fake"],
        "note": row["note"],
        "samples": len(samples),
        "peak_rss_mb": round(peak["VmHWM"] / MB, 1),
        "rss_mb_at_video_10_25_50_75_100_pct": None,
        "growth_last_75pct_of_video_mb": None,
        "keeping_frames_would_need_gb": round(
            (frames if mode.startswith("every") else details.get("sampled_frames", 0))
            * WIDTH
            * HEIGHT
            * 3
            / 1024**3,
            2,
        ),
        "series": _downsample(times, rss, 150),
        "by_frame": [[f, round(r, 1)] for f, r in _thin(progress, 200)],
    }
    if progress and frames:
        positions = np.array([f for f, _ in progress]) / frames
        values = np.array([r for _, r in progress])

        def at(q: float) -> float:
            return round(float(values[min(len(values) - 1, int(np.searchsorted(positions, q)))]), 1)

        run["rss_mb_at_video_10_25_50_75_100_pct"] = [at(q) for q in (0.1, 0.25, 0.5, 0.75, 1.0)]
        late = values[positions >= 0.25]
        if len(late) >= 2:
            run["growth_last_75pct_of_video_mb"] = round(float(late.max() - late.min()), 1)
    return run


def _thin(points: list[tuple[int, float]], most: int) -> list[tuple[int, float]]:
    if len(points) <= most:
        return points
    idx = np.linspace(0, len(points) - 1, most).round().astype(int)
    return [points[i] for i in idx]


def _downsample(times: np.ndarray, rss: np.ndarray, points: int) -> list[list[float]]:
    count = min(len(times), points)
    idx = np.linspace(0, len(times) - 1, count).round().astype(int) if count else np.arange(0)
    return [[round(float(times[i]), 2), round(float(rss[i]), 1)] for i in idx]


# ---------------------------------------------------------------------------- report
def write_reports(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "video_memory.json").write_text(json.dumps(doc, indent=2) + "\n")
    video = doc["video"]
    baseline = next((r["peak_rss_mb"] for r in doc["runs"] if r["mode"] == "image"), None)
    lines = [
        "# Video memory: a 10-minute 1080p video through `deepfake-detector predict`",
        "",
        f"Video: {video['width']}x{video['height']} {video['codec']}, {video['minutes']:g} min at "
        f"{video['fps']:g} fps = {video['frames']:,} frames, {video['bytes'] / MB:.0f} MB "
        "(synthesised: a dfdc face crop drifting over a textured background). "
        f"Machine: {doc['machine']['cpus']} CPUs shared with other jobs, load average before "
        f"{doc['machine']['load_before']}, after {doc['machine']['load_after']}. "
        f"Command: `{doc['command'].strip()}` (under `nice -n 15`), model `{doc['model']}`, batch size 64.",
        "",
        "| input | frames decoded | scored | wall s | CPU s | peak RSS (MB) | over the one-image run (MB) | "
        "RSS at 10 / 25 / 50 / 75 / 100% of the video (MB) | growth over the last 75% of the video (MB) | "
        "keeping the frames would need | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for run in doc["runs"]:
        if run["mode"] == "image":
            what, decoded = "one face image (baseline)", "-"
        else:
            what = f"the video, `{' '.join(run['args'])}`"
            decoded = f"{run['frames_decoded']:,}" if run["frames_decoded"] else "32 (seeks)"
        over = "-" if baseline is None or run["mode"] == "image" else round(run["peak_rss_mb"] - baseline, 1)
        positions = run["rss_mb_at_video_10_25_50_75_100_pct"]
        along = "-" if positions is None else " / ".join(map(str, positions))
        growth = "-" if run["growth_last_75pct_of_video_mb"] is None else run["growth_last_75pct_of_video_mb"]
        keep = "-" if run["mode"] == "image" else f"{run['keeping_frames_would_need_gb']} GB"
        pooled = " (pooled)" if run["pooled"] else ""
        lines.append(
            f"| {what} | {decoded} | {run['frames_scored']} | {run['wall_s']} | {run['cpu_s']} | "
            f"{run['peak_rss_mb']} | {over} | {along} | {growth} | {keep} | "
            f"{run['label']} {run['prob_fake']:.3f}, {run['tracks']} track(s){pooled} |"
        )
    lines += [
        "",
        "RSS along the video is what the process reported as it read each sampled frame; the first "
        "quarter holds the warm-up (ONNX Runtime's arena grows to the 64-face batches, thread-local "
        "allocator arenas fill), so growth is measured over the rest. The peak includes drawing the "
        "contact sheet and timeline at the end (matplotlib). The parent also sampled RSS every "
        f"{doc['interval_s']} s from /proc/PID/status; both series are in video_memory.json and "
        "plotted in video_memory.png.",
        "",
    ]
    (out / "video_memory.md").write_text("\n".join(lines))
    _plot(doc, out / "video_memory.png")


def _plot(doc: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    by_time, by_video = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, run in enumerate(doc["runs"]):
        label, colour = " ".join(run["args"]) or "one image", f"C{k}"
        series = np.array(run["series"])
        if len(series):
            by_time.plot(series[:, 0], series[:, 1], color=colour, label=label)
        frames = np.array(run["by_frame"])
        if len(frames) and run["frames_in_video"]:
            position = 100 * frames[:, 0] / run["frames_in_video"]
            by_video.plot(position, frames[:, 1], marker=".", color=colour, label=label)
    by_time.set_xlabel("seconds since start")
    by_video.set_xlabel("position in the video (%)")
    for ax in (by_time, by_video):
        ax.set_ylabel("RSS (MB)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"predict on a {doc['video']['minutes']:g}-minute 1080p video: resident memory", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument(
        "--modes", default="image,frames32,every25", help=f"comma-separated, of {', '.join(MODES)}"
    )
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
            source = face_file(args.faces) if mode == "image" else video
            run = run_mode(source, mode, args.model, args.interval, Path(tmp))
            print(
                f"  {run['wall_s']} s wall, peak RSS {run['peak_rss_mb']} MB, growth over the last 75% of "
                f"the video {run['growth_last_75pct_of_video_mb']} MB, {run['label']} {run['prob_fake']}",
                flush=True,
            )
            runs.append(run)
    doc = {
        "command": "python benchmarks/bench_video_memory.py " + " ".join(sys.argv[1:]),
        "video": info,
        "interval_s": args.interval,
        "model": args.model,
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
