"""The slim service image's install steps (Dockerfile -> scripts/install_service.sh), run for real
in a fresh virtual environment: CI has no Docker engine, so this is how the image's steps are tested."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from service_helpers import dfdc_image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install_service.sh"

SERVICE_CHECK = """
import json, sys
from fastapi.testclient import TestClient
from deepfake_detector.service import create_app
with TestClient(create_app("default")) as client:
    with open(sys.argv[1], "rb") as fh:
        body = client.post("/v1/predict", files={"file": ("face.jpg", fh, "image/jpeg")}).json()
    ready = client.get("/readyz").status_code
print(json.dumps({"ready": ready, "label": body["label"], "prob_fake": body["prob_fake"]}))
"""


def test_the_dockerfile_runs_the_install_script_this_test_runs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN bash scripts/install_service\.sh /opt/venv", text, re.M)
    assert re.search(r'^CMD \["deepfake-detector", "serve", "--host", "0\.0\.0\.0"', text, re.M)


def test_the_slim_install_serves_the_default_model_without_torch(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = subprocess.run(["bash", str(SCRIPT), str(venv)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    python = venv / "bin" / "python"
    no_torch = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    face = dfdc_image("Fake", 0)
    predicted = subprocess.run(
        [venv / "bin" / "deepfake-detector", "predict", str(face), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr
    (row,) = json.loads(predicted.stdout)["predictions"]
    assert row["label"] in ("fake", "real", "uncertain") and row["face_count"] == 1
    served = subprocess.run(
        [python, "-c", SERVICE_CHECK, str(face)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert served.returncode == 0, served.stderr[-3000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["ready"] == 200 and answer["label"] == row["label"]
    assert abs(answer["prob_fake"] - row["prob_fake"]) < 1e-6
