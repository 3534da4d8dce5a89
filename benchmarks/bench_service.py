"""Load test of `deepfake-detector serve` on loopback: N concurrent clients for a fixed time each.

    python benchmarks/bench_service.py --model runs/default-dfdc [--clients 1,8,32] [--duration 20]
    python benchmarks/bench_service.py --untrained seed-cnn --duration 5     # no trained model yet
    python benchmarks/bench_service.py --url http://127.0.0.1:8000          # a server already running

Starts the server in a subprocess on a free 127.0.0.1 port (or targets --url, which must be a
loopback address), preloads dfdc Test images in memory, warms up, then for each concurrency level
runs that many httpx asyncio clients posting raw JPEG bodies to /v1/predict for --duration seconds
(and at most --max-requests requests). A 503 is the server's deliberate back-pressure: the client
waits Retry-After (at most --max-backoff s) and goes on. Reports requests/s, p50/p95/p99 latency of
answered requests, counts by status and client-side errors, and the server's RSS before and after
warm-up and after each level (memory growth after warm-up, %). Writes benchmarks/results/service.json
and service.md. The load generator shares the machine's cores with the server: the figures are
for both on one box.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / ".." / "shared" / "data" / "dfdc" / "Test"
DEFAULT_OUT = HERE / "results"
PACKAGED_DEFAULT = HERE.parent / "src" / "deepfake_detector" / "weights" / "default" / "model.json"
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 300.0
MEMORY_GROWTH_LIMIT_PCT = 10.0


# ---------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def untrained_bundle(architecture: str, folder: Path, img_size: int | None) -> str:
    import torch

    from deepfake_detector.models import create_model, save_bundle
    from deepfake_detector.models.registry import model_info
    from deepfake_detector.spec import ModelSpec

    torch.manual_seed(0)
    info = model_info(architecture)
    size = img_size or info.default_img_size
    spec = ModelSpec(
        architecture=architecture,
        img_size=size,
        mean=info.mean,
        std=info.std,
        name=f"untrained-{architecture}",
    )
    save_bundle(create_model(architecture, img_size=size), spec, folder)
    return str(folder)


def start_server(model: str, args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from deepfake_detector.cli import app; app()",
        "serve",
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--queue-size",
        str(args.queue_size),
        "--log-level",
        "warning",  # one access line per request would cost the server measurable time here
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: see {log_path}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit(f"server not ready after {START_TIMEOUT_S} s: see {log_path}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), from /proc."""
    total_kb = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except FileNotFoundError:
            continue
    return round(total_kb / 1024.0, 1)


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"--url must point at a loopback address (127.0.0.0/8, ::1, localhost), got {host!r}")


# ---------------------------------------------------------------------------- the load
def load_images(folder: Path, count: int) -> list[bytes]:
    paths = (
        sorted((folder / "Real").glob("*.jpg"))[: count // 2]
        + sorted((folder / "Fake").glob("*.jpg"))[: count - count // 2]
    )
    if not paths:
        raise SystemExit(f"no images in {folder}/Real or {folder}/Fake")
    return [p.read_bytes() for p in paths]


async def run_level(
    url: str, images: list[bytes], clients: int, duration: float, max_requests: int, max_backoff: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    stop_at = time.perf_counter() + duration
    # Idle connections are dropped by the client (4 s) before the server would close them (30 s):
    # otherwise a request can race the server's close and fail with a ReadError.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=4.0)

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        nonlocal sent
        turn = index
        while time.perf_counter() < stop_at and sent < max_requests:
            sent += 1
            body = images[turn % len(images)]
            turn += clients
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/v1/predict", content=body, headers={"content-type": "image/jpeg"}
                )
            except httpx.HTTPError as exc:
                statuses[f"client error: {type(exc).__name__}"] += 1
                continue
            statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            elif response.status_code == 503:
                retry_after = float(response.headers.get("retry-after", "1") or 1)
                await asyncio.sleep(min(retry_after, max_backoff))

    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    ok = int(statuses.get("200", 0))

    def pct(q: float) -> float | None:
        return round(float(np.percentile(ms, q)), 1) if ms.size else None

    server_errors = {k: v for k, v in statuses.items() if k.startswith("5") and k != "503"}
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": sum(statuses.values()),
        "answered_200": ok,
        "requests_per_s": round(ok / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "mean": round(float(ms.mean()), 1) if ms.size else None,
        },
        "statuses": dict(sorted(statuses.items())),
        "unexpected_5xx": sum(server_errors.values()),
        "client_errors": sum(v for k, v in statuses.items() if k.startswith("client error")),
    }


# ---------------------------------------------------------------------------- report
def write_reports(result: dict[str, Any], out_dir: Path) -> None:
    from deepfake_detector.fileio import atomic_write_json, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "service.json", result)
    mem = result["memory_mb"]
    lines = [
        "# Service load test (loopback)",
        "",
        f"Model `{result['model']}` ({result['architecture']}, {result['engine']} engine), "
        f"{result['server']['workers']} worker(s), queue size {result['server']['queue_size']}, "
        f"{result['machine']['cpus']} CPU cores shared by server and load generator "
        f"(load average at start {result['machine']['load_average_at_start']}). "
        f"{result['images']} dfdc Test JPEGs (224x224) posted raw to /v1/predict; "
        f"{result['duration_s']} s per level; 503 = deliberate back-pressure (client waits Retry-After).",
        "",
        "| clients | requests/s | p50 ms | p95 ms | p99 ms | 200 | 503 | other 5xx | client errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result["levels"]:
        lat = level["latency_ms"]
        lines.append(
            f"| {level['clients']} | {level['requests_per_s']} | {lat['p50']} | {lat['p95']} | {lat['p99']} "
            "| "
            f"{level['answered_200']} | {level['statuses'].get('503', 0)} | {level['unexpected_5xx']} | "
            f"{level['client_errors']} |"
        )
    lines += [
        "",
        f"Server RSS: {mem['before_warmup']} MB before warm-up, {mem['after_warmup']} MB after, "
        f"{mem['end']} MB at the end: growth after warm-up {mem['growth_after_warmup_pct']}% "
        f"(limit {MEMORY_GROWTH_LIMIT_PCT}%).",
        "",
        "Checks: "
        + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in result["checks"].items())
        + ".",
        "",
    ]
    atomic_write_text(out_dir / "service.md", "\n".join(lines))


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="model to serve (default: the packaged 'default' model)")
    source.add_argument(
        "--untrained", metavar="ARCH", help="serve a freshly initialised model of this architecture"
    )
    source.add_argument("--url", help="load an already running server instead (loopback only)")
    parser.add_argument("--img-size", type=int, help="input size for --untrained")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of warm-up at the top concurrency"
    )
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on requests per level")
    parser.add_argument("--max-backoff", type=float, default=1.0, help="longest wait after a 503 (s)")
    parser.add_argument("--images", type=int, default=64, help="distinct test images cycled through")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with Real/ and Fake/ JPEGs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, help="inference threads per worker (default: cores)")
    parser.add_argument("--queue-size", type=int, default=16)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for service.json and service.md"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if any(c < 1 for c in levels) or args.duration <= 0:
        raise SystemExit("--clients must be positive integers and --duration positive")

    images = load_images(args.data, args.images)
    process = None
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        if args.url:
            check_loopback(args.url)
            url = args.url.rstrip("/")
        else:
            if args.untrained:
                model = untrained_bundle(args.untrained, Path(tmp) / "model", args.img_size)
            elif args.model:
                model = args.model
            elif PACKAGED_DEFAULT.is_file():
                model = "default"
            else:
                raise SystemExit("no packaged default model: pass --model RUN_DIR or --untrained ARCH")
            log_path = (
                Path(tempfile.gettempdir()) / f"bench-service-server-{os.getpid()}.log"
            )  # kept to inspect
            print(f"server log: {log_path}", file=sys.stderr)
            process, url = start_server(model, args, log_path)
        try:
            result = measure(url, process, images, levels, args)
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    write_reports(result, args.out)
    print(json.dumps({k: result[k] for k in ("levels", "memory_mb", "checks")}, indent=2))


def measure(
    url: str,
    process: subprocess.Popen | None,
    images: list[bytes],
    levels: list[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    info = httpx.get(url + "/v1/model", timeout=30).json()
    pid = process.pid if process is not None else None
    memory: dict[str, float | None] = {"before_warmup": rss_mb(pid) if pid else None}
    load_at_start = round(os.getloadavg()[0], 2)
    # Warm up at the highest concurrency, so buffers and thread arenas reach their working size first.
    asyncio.run(run_level(url, images, max(levels), args.warmup, args.max_requests, args.max_backoff))
    memory["after_warmup"] = rss_mb(pid) if pid else None
    results = []
    for clients in levels:
        level = asyncio.run(
            run_level(url, images, clients, args.duration, args.max_requests, args.max_backoff)
        )
        level["rss_mb_after"] = rss_mb(pid) if pid else None
        results.append(level)
        print(json.dumps(level), flush=True)
    memory["end"] = rss_mb(pid) if pid else None
    growth = None
    if memory["after_warmup"] and memory["end"]:
        growth = round((memory["end"] - memory["after_warmup"]) / memory["after_warmup"] * 100.0, 2)
    memory["growth_after_warmup_pct"] = growth
    checks = {
        "no 5xx other than 503": all(level["unexpected_5xx"] == 0 for level in results),
        "every accepted request answered": all(level["client_errors"] == 0 for level in results),
        f"memory growth <= {MEMORY_GROWTH_LIMIT_PCT:g}%": growth is not None
        and growth <= MEMORY_GROWTH_LIMIT_PCT,
    }
    return {
        "model": info["name"] or info["architecture"],
        "architecture": info["architecture"],
        "engine": info["engine"],
        "input_size": info["input_size"],
        "server": {
            "url": url,
            "workers": args.workers,
            "queue_size": args.queue_size,
            "threads": args.threads,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
        },
        "images": len(images),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "levels": results,
        "memory_mb": memory,
        "checks": checks,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


if __name__ == "__main__":
    main()
