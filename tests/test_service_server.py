"""The real server under hostile or unlucky clients: 200 MB uploads, slow bodies, disconnects, bursts
beyond the queue and a crashed worker process. It must answer what it can and keep serving."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import Server, jpeg_bytes, model_ref, run_server

UPLOAD_LIMIT_MB = 2
UPLOAD_TIMEOUT_S = 3
BIG_BODY = 200 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return model_ref(tmp_path_factory.mktemp("server-model"))


@pytest.fixture(scope="module")
def server(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    options = ["--max-upload-mb", str(UPLOAD_LIMIT_MB), "--upload-timeout", str(UPLOAD_TIMEOUT_S)]
    with run_server(
        model, log, *options, "--queue-size", "2", "--threads", "1", "--timeout", "120"
    ) as running:
        yield running


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(server: Server, headers: dict[str, str]) -> bytes:
    lines = ["POST /v1/predict HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status code and the whole response (headers and, per Content-Length, the body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:  # the body may arrive in a later segment than the headers
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(data.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def predict_ok(server: Server) -> dict:
    """The check every fault test ends with: a normal upload is still answered."""
    response = httpx.post(
        server.url + "/v1/predict",
        content=jpeg_bytes(),
        headers={"content-type": "image/jpeg"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- size
def test_200mb_upload_with_content_length_is_refused_before_any_body_is_read(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(server, {"Content-Type": "image/jpeg", "Content-Length": str(BIG_BODY)}))
        status, data = read_status(sock)  # answered on the headers alone: not one body byte was sent
    assert status == 413
    assert b"request body too large (200.0 MB)" in data or b"too large" in data
    predict_ok(server)


def test_200mb_streamed_upload_is_cut_off_at_the_limit(server: Server) -> None:
    """Chunked (no Content-Length): the server counts as it reads and answers 413 at the limit, long
    before the 200 MB generator is consumed."""
    produced = 0
    answered_at: list[int] = []

    def body() -> Iterator[bytes]:
        nonlocal produced
        block = b"\0" * CHUNK
        while produced < BIG_BODY:
            produced += CHUNK
            yield f"{CHUNK:x}\r\n".encode() + block + b"\r\n"
        yield b"0\r\n\r\n"

    sock = connect(server)
    head = {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
    sock.sendall(request_head(server, head))

    def send_all() -> None:
        try:
            for piece in body():
                if answered_at:
                    return
                sock.sendall(piece)
        except OSError:
            return  # the server closed the connection after answering: expected

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    try:
        status, _ = read_status(sock)
        answered_at.append(produced)
    finally:
        sock.close()
        sender.join(timeout=30)
    assert status == 413
    assert answered_at[0] < BIG_BODY // 4, f"server answered only after {answered_at[0]} bytes"
    predict_ok(server)


# --- slow and vanishing clients
def test_slow_loris_body_is_dropped_with_408(server: Server) -> None:
    stop = threading.Event()
    with connect(server) as sock:
        sock.sendall(request_head(server, {"Content-Type": "image/jpeg", "Content-Length": "100000"}))

        def trickle() -> None:
            try:
                while not stop.wait(0.5):
                    sock.sendall(b"\xff" * 10)
            except OSError:
                return

        sender = threading.Thread(target=trickle, daemon=True)
        started = time.monotonic()
        sender.start()
        try:
            status, data = read_status(sock)
        finally:
            stop.set()
        elapsed = time.monotonic() - started
        sender.join(timeout=10)
    assert status == 408 and b"not received within" in data
    assert UPLOAD_TIMEOUT_S - 0.5 <= elapsed < UPLOAD_TIMEOUT_S + 30
    predict_ok(server)


def test_clients_vanishing_mid_upload_leave_the_server_serving(server: Server) -> None:
    for _ in range(5):
        sock = connect(server)
        sock.sendall(request_head(server, {"Content-Type": "image/jpeg", "Content-Length": str(CHUNK)}))
        sock.sendall(b"\xff\xd8" + b"\0" * (CHUNK // 2))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not FIN
        sock.close()
    predict_ok(server)
    deadline = time.monotonic() + 30
    while '"status": 499' not in server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert '"status": 499' in server.log()  # logged as "client closed request", no traceback
    assert "Traceback" not in server.log()
    assert httpx.get(server.url + "/readyz", timeout=10).json()["in_flight"] == 0


# --- load beyond the queue
def test_burst_beyond_the_queue_gets_503s_and_every_accepted_request_is_answered(server: Server) -> None:
    images = [jpeg_bytes(seed=i) for i in range(12)]
    files = [("files", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/predict/batch", files=files) for _ in range(20)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
        else:
            assert response.json()["count"] == 12 and response.json()["errors"] == 0
    assert httpx.get(server.url + "/readyz", timeout=10).json()["in_flight"] == 0
    predict_ok(server)


# --- worker processes
def worker_pids(parent: int) -> set[int]:
    """uvicorn's worker processes: the children of the supervisor that run multiprocessing's spawn."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    if not children.exists():
        pytest.skip("needs Linux /proc to find the worker processes")
    pids = set()
    for pid in children.read_text().split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            pids.add(int(pid))
    return pids


@pytest.mark.slow
def test_a_crashed_worker_process_is_replaced_and_the_service_keeps_answering(
    model: str, tmp_path: Path
) -> None:
    with run_server(model, tmp_path / "workers.log", "--workers", "2", "--threads", "1") as server:
        deadline = time.monotonic() + 240
        while len(worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        before = worker_pids(server.process.pid)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        for _ in range(6):  # the surviving worker answers meanwhile
            predict_ok(server)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            now = worker_pids(server.process.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.5)
        after = worker_pids(server.process.pid)
        assert len(after) == 2 and victim not in after
        assert server.process.poll() is None
        for _ in range(6):
            predict_ok(server)
        assert f"Child process [{victim}] died" in server.log()
