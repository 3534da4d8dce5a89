"""Shared pieces of the service tests: the model to serve, test images, and a real server process."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DFDC_TEST = SHARED_DATA / "dfdc" / "Test"
# The fast packaged CNN: these tests need Grad-CAM (a PyTorch network) and many quick requests.
PACKAGED_DEFAULT = Path(__file__).resolve().parents[1] / "src" / "deepfake_detector" / "weights" / "fast"
SERVER_START_TIMEOUT_S = 600  # importing torch and loading a model on a busy 2-core machine


def model_ref(folder: Path) -> str:
    """The packaged `fast` model when it is installed, else a small seed-cnn bundle saved in `folder`."""
    if (PACKAGED_DEFAULT / "model.json").is_file():
        return "fast"
    import torch

    from deepfake_detector.models import create_model, save_bundle
    from deepfake_detector.spec import ModelSpec

    torch.manual_seed(0)
    spec = ModelSpec(architecture="seed-cnn", img_size=128, name="service-test", version="test")
    save_bundle(create_model("seed-cnn", img_size=128), spec, folder)
    return str(folder)


def dfdc_image(cls: str, index: int = 0) -> Path:
    """A dfdc Test image of class Real or Fake. The tests that use one need real faces, so a missing
    ../shared/data fails them (never a silent skip); tests where the image is not the point use
    jpeg_bytes instead."""
    folder = DFDC_TEST / cls
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if len(files) <= index:
        pytest.fail(
            f"{folder}: shared dfdc test image {index} not found; this test needs ../shared/data/dfdc "
            "(the Kaggle dataset, see README)",
            pytrace=False,
        )
    return files[index]


def jpeg_bytes(width: int = 224, height: int = 224, seed: int = 0) -> bytes:
    """A synthetic RGB JPEG (smooth colours plus noise, quality 90): a face-crop-sized upload by default."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8))
    pixels = np.asarray(small.resize((width, height), Image.BILINEAR), dtype=np.int16)
    pixels = np.clip(pixels + rng.integers(-20, 21, size=pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A smooth random RGB PNG of the given size."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    small.resize((width, height), Image.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(model: str, log_path: Path, *args: str) -> Iterator[Server]:
    """`deepfake-detector serve` in a subprocess on a free loopback port, ready when yielded."""
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
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, process, log_path)
    try:
        wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_ready(server: Server, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout_s} s:\n{server.log()[-4000:]}")
