#!/usr/bin/env bash
# Reproduce the model shipped in the package (src/deepfake_detector/weights/default/) from the data:
# train the `default` preset on dfdc Train (selected on Validation), export it to ONNX, copy it in.
#   bash scripts/build_default_model.sh [DATA] [RUN_DIR]
set -euo pipefail
DATA=${1:-../shared/data/dfdc}
RUN=${2:-runs/default-dfdc}
DD=${DD:-.venv/bin/deepfake-detector}
DEST=src/deepfake_detector/weights/default

if [ -f "$RUN/checkpoints/last.ckpt" ] && [ ! -f "$RUN/model.json" ]; then
  $DD train --resume "$RUN"
elif [ ! -f "$RUN/model.json" ]; then
  $DD train "$DATA" --preset default --out "$RUN"
fi
$DD export "$RUN" --format onnx
mkdir -p "$DEST"
cp "$RUN/model.safetensors" "$RUN/model.json" "$RUN/model.onnx" "$RUN/metrics.csv" "$RUN/config.yaml" "$DEST/"
echo "shipped: $(ls "$DEST")"
