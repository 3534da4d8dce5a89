#!/usr/bin/env bash
# The CUDA path on a GPU machine, in one run: training with mixed precision (Lightning 16-mixed),
# evaluation and batch prediction on the GPU, and GPU throughput figures for docs/scaling.md.
# It also trains a few variants of the default preset side by side (self-blended pseudo-fakes,
# heavier degradations) and scores each on an unseen generator, to choose the shipped recipe.
#
#   benchmarks/gpu_check.sh TRAIN_DATA TEST_DATA UNSEEN_DATA OUT [VARIANT ...]
#
# TRAIN_DATA: Kaggle layout (Train/Validation); TEST_DATA, UNSEEN_DATA: folders with Real/Fake or
# a Kaggle-layout root. Results: OUT/results.jsonl (one line per variant), OUT/throughput.txt,
# OUT/<variant>.tar.gz (run folder without checkpoints; not for seed).
set -uo pipefail
train_data=$1 test_data=$2 unseen_data=$3 out=$4
shift 4
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(default sbi30 degrade sbi30-degrade sbi50 seed)
mkdir -p "$out" runs-gpu
cli() { python3 -m deepfake_detector "$@"; }

overrides() {  # variant name -> train options
  case $1 in
    default) echo "--preset default" ;;
    seed) echo "--preset seed" ;;
    sbi30) echo "--preset default --set augment.self_blend_p=0.3" ;;
    sbi50) echo "--preset default --set augment.self_blend_p=0.5" ;;
    degrade) echo "--preset default --set augment.noise_p=0.2 --set augment.blur_p=0.3 --set augment.downscale_p=0.3" ;;
    sbi30-degrade) echo "--preset default --set augment.self_blend_p=0.3 --set augment.noise_p=0.2 --set augment.blur_p=0.3 --set augment.downscale_p=0.3" ;;
    *) echo "unknown variant $1" >&2; return 1 ;;
  esac
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/throughput.txt"
# Throughput of the shipped default model: alone on GPU batches, and predict-dataset end to end.
python3 - default "$out/throughput.txt" <<'EOF'
import json, sys, time
import numpy as np, torch
from deepfake_detector.inference import Detector
from deepfake_detector.spec import preprocess_batch
det = Detector.load(sys.argv[1], device="cuda")
rng = np.random.default_rng(0)
res = {"device": torch.cuda.get_device_name(0)}
for bs in (64, 256, 1024):
    imgs = rng.integers(0, 256, (bs, det.spec.img_size, det.spec.img_size, 3), dtype=np.uint8)
    x = preprocess_batch(imgs, det.spec)
    for _ in range(3):
        det.engine.logits(x)
    torch.cuda.synchronize(); t = time.perf_counter(); n = 0
    while time.perf_counter() - t < 3:
        det.engine.logits(x); n += bs
    torch.cuda.synchronize()
    res[f"model_only_fp32_bs{bs}_img_per_s"] = round(n / (time.perf_counter() - t))
print(json.dumps(res))
open(sys.argv[2], "a").write(json.dumps(res) + "\n")
EOF
t0=$(date +%s.%N)
cli predict-dataset "$train_data/Train" --model default --device cuda --workers 16 --batch-size 256 \
  --out "$out/predict_gpu.parquet" 2>&1 | tr -s "\n " " " | tee -a "$out/throughput.txt"; echo
python3 -c "import sys, time; print(f'wall {time.time() - float(sys.argv[1]):.1f} s')" "$t0" | tee -a "$out/throughput.txt"
rm -f "$out/predict_gpu.parquet"

for v in "${variants[@]}"; do
  run=runs-gpu/$v
  start=$(date +%s)
  weights=()
  [ "$v" != seed ] && [ -n "${GPU_WEIGHTS:-}" ] && weights=(--weights "$GPU_WEIGHTS")
  # shellcheck disable=SC2046  # the options must split into words
  cli train "$train_data" $(overrides "$v") "${weights[@]}" \
    --out "$run" --workers "${WORKERS:-12}" --quiet || { echo "{\"variant\": \"$v\", \"error\": \"train failed\"}" >>"$out/results.jsonl"; continue; }
  train_s=$(( $(date +%s) - start ))
  cli evaluate "$run" "$test_data" "$unseen_data" --out "$run/eval" --device cuda --workers 8 >/dev/null || true
  python3 - "$v" "$run" "$train_s" >>"$out/results.jsonl" <<'EOF'
import csv, json, sys
variant, run, train_s = sys.argv[1], sys.argv[2], int(sys.argv[3])
metrics = json.load(open(f"{run}/eval/metrics.json"))
rows = list(csv.DictReader(open(f"{run}/metrics.csv")))
keep = ("roc_auc", "accuracy", "balanced_accuracy", "ece", "threshold")
print(json.dumps({
    "variant": variant, "train_seconds": train_s, "epochs": len(rows),
    "last_val_auc": float(rows[-1].get("val_auc", "nan")) if rows else None,
    **{name: {k: m.get(k) for k in keep} for name, m in metrics.items()},
}))
EOF
  tail -1 "$out/results.jsonl"
  [ "$v" = seed ] || tar czf "$out/$v.tar.gz" --exclude=checkpoints -C runs-gpu "$v"
done
