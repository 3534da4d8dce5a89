#!/usr/bin/env bash
# Reproduce the two models shipped in the package from the shared data:
#   fast    (src/deepfake_detector/weights/fast/): MobileNetV2 trained by the `fast` preset on dfdc
#           Train (selected on Validation), exported to ONNX, then calibrated under the landmark
#           crop spec on dfdc Validation (scripts/calibrate_crop_spec.py).
#   default (src/deepfake_detector/weights/default/): the `default` preset (CLIP ViT-B/16 features,
#           MLP head, fused with `fast`) trained on dfdc and stylegan-ffhq together.
#   bash scripts/build_default_model.sh [DATA_ROOT] [RUNS]
set -euo pipefail
DATA=${1:-../shared/data}
RUNS=${2:-runs}
DD=${DD:-.venv/bin/deepfake-detector}
PY=${PY:-.venv/bin/python}
WEIGHTS=src/deepfake_detector/weights

# fast: an hour of CPU; resumable.
CNN="$RUNS/fast-dfdc"
if [ -f "$CNN/checkpoints/last.ckpt" ] && [ ! -f "$CNN/model.json" ]; then
  $DD train --resume "$CNN"
elif [ ! -f "$CNN/model.json" ]; then
  $DD train "$DATA/dfdc" --preset fast --out "$CNN"
fi
$DD export "$CNN" --format onnx
$PY scripts/calibrate_crop_spec.py "$CNN" "$DATA/dfdc" "$WEIGHTS/fast" --name fast-dfdc

# default: minutes once CLIP features are cached (the first run encodes ~10,600 images).
CLIP="$RUNS/default-clip"
[ -f "$CLIP/model.json" ] || $DD train "$DATA/dfdc" "$DATA/stylegan-ffhq" --preset default --out "$CLIP"
mkdir -p "$WEIGHTS/default/domain"
cp "$CLIP/model.json" "$CLIP/head.safetensors" "$CLIP/head.json" "$CLIP/config.yaml" "$WEIGHTS/default/"
cp "$CLIP/domain/head.safetensors" "$CLIP/domain/head.json" "$WEIGHTS/default/domain/"
# Their model cards (what they detect, data, Validation and Test figures, limits, licences); the
# Test figures come from `evaluate` runs in benchmarks/results/eval-{default,fast}/.
$PY scripts/write_model_cards.py
echo "shipped: $(ls "$WEIGHTS/fast") | $(ls "$WEIGHTS/default")"
