"""Put a trained model under a crop spec: re-fit its temperature and threshold on a Validation split
whose faces are cut by that spec, and write the result as a new model folder (weights unchanged).

    python scripts/calibrate_crop_spec.py MODEL DATA DEST [--name fast] [--faces auto]

This is how the shipped `fast` model (the MobileNetV2 trained on dfdc crops) was moved to the
landmark-anchored crop spec of data/crop.py: its weights were trained on dfdc's tight crops, which
the spec reproduces, so only the calibration is redone (on dfdc Validation; Test is never used).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

from deepfake_detector.data.crop import CropSpec
from deepfake_detector.data.manifest import discover_split
from deepfake_detector.data.region_cache import cached_regions
from deepfake_detector.evaluation.calibration import fit_temperature
from deepfake_detector.evaluation.metrics import compute_metrics
from deepfake_detector.evaluation.threshold import choose_threshold
from deepfake_detector.inference import Detector


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("dest")
    parser.add_argument("--name", default=None)
    parser.add_argument("--faces", default="auto")
    parser.add_argument("--cache", default=None, help="region cache folder (default: none)")
    args = parser.parse_args()
    detector = Detector.load(args.model)
    crop = CropSpec()
    val = discover_split(args.data, "val")
    regions = cached_regions(val, int(detector.spec.img_size), args.cache, crop, args.faces)
    logits = detector.predict_logits(list(regions.arrays))
    labels = val.labels
    temperature = float(fit_temperature(labels, logits))
    spec = replace(detector.spec, crop=crop, temperature=temperature, name=args.name or detector.spec.name)
    probs = spec.probability(logits)
    spec.threshold = float(choose_threshold(labels, probs, method=spec.threshold_method))
    spec.metrics = {**spec.metrics, "val": compute_metrics(labels, probs, spec.threshold)}
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    source = Path(detector.folder)
    for name in ("model.safetensors", "model.onnx", "metrics.csv", "config.yaml"):
        if (source / name).is_file() and source.resolve() != dest.resolve():
            shutil.copy2(source / name, dest / name)
    spec.save(dest / "model.json")
    auc = spec.metrics["val"]["roc_auc"]
    print(f"{dest}: temperature {temperature:.3f}, threshold {spec.threshold:.3f}, val AUC {auc:.4f}")


if __name__ == "__main__":
    main()
