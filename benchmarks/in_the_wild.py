"""In-the-wild benchmark: the same faces as crops and as users bring them (inside larger photos).

    python benchmarks/in_the_wild.py --model default --model fast [--split Test] [--per-class 400]

For each model and condition it runs `Detector.predict(..., faces="auto")` (the path every entry
point uses) and reports ROC-AUC and the share of real images called fake:
- dfdc crops as shipped (the crop path);
- the same crops placed inside larger frames at three face sizes (the photo path). A frame is
  built from its crop alone, with no hard seam: the crop is resized so its side is the face size,
  put at a seeded random position in a 1280x960 frame, the rest of the frame filled by extending
  the crop's edge pixels outwards (OpenCV BORDER_REPLICATE), and that extension blurred with a
  Gaussian (sigma 12 px) that fades in over 16 px outside the crop; the crop itself stays sharp;
- stylegan-ffhq whole faces at their 256 px, and upscaled (bicubic) to 1024 px.
Frames are built in memory (never written to disk). Results: benchmarks/results/in_the_wild.{json,md}.
Choose models on Validation; report on Test (the default).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.data.images import load_image
from deepfake_detector.evaluation.metrics import compute_metrics
from deepfake_detector.inference import Detector

FRAME_W, FRAME_H = 1280, 960
FACE_SIZES = (480, 240, 120)  # crop side in the frame: 50%, 25% and 12.5% of its height
BLUR_SIGMA, FEATHER_PX = 12.0, 16


def embed_in_frame(crop: np.ndarray, side: int, rng: random.Random) -> np.ndarray:
    """The crop resized to side x side inside a FRAME_W x FRAME_H frame that continues it (see module doc)."""
    face = cv2.resize(
        crop, (side, side), interpolation=cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_CUBIC
    )
    left, top = rng.randint(0, FRAME_W - side), rng.randint(0, FRAME_H - side)
    frame = cv2.copyMakeBorder(
        face, top, FRAME_H - side - top, left, FRAME_W - side - left, cv2.BORDER_REPLICATE
    )
    blurred = cv2.GaussianBlur(frame, (0, 0), BLUR_SIGMA)
    inside = np.zeros((FRAME_H, FRAME_W), np.float32)
    inside[top : top + side, left : left + side] = 1.0
    distance = cv2.distanceTransform((inside == 0).astype(np.uint8), cv2.DIST_L2, 5)
    weight = np.clip(1.0 - distance / FEATHER_PX, 0.0, 1.0)[..., None]  # 1 on the crop, 0 past the feather
    return (frame * weight + blurred * (1.0 - weight)).astype(np.uint8)


def upscale(image: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)


def sample(
    root: Path, split: str, per_class: int, seed: int = 0, exclude: frozenset[str] = frozenset()
) -> list[tuple[str, int]]:
    """A seeded sample per class, leaving out `exclude` (files a model trained or calibrated on)."""
    rows = []
    for label, name in ((0, "Real"), (1, "Fake")):
        files = sorted(
            str(p) for p in (root / split / name).iterdir() if p.is_file() and str(p) not in exclude
        )
        random.Random(seed).shuffle(files)
        rows += [(f, label) for f in files[:per_class]]
    return rows


def score(detector: Detector, rows: list[tuple[str, int]], transform: Callable | None, seed: int) -> dict:
    rng = random.Random(seed)
    sources = [load_image(path) if transform else path for path, _ in rows]
    if transform:
        sources = [transform(image, rng) for image in sources]
    started = time.perf_counter()
    predictions = detector.predict(sources, faces="auto")
    seconds = time.perf_counter() - started
    labels = np.array([label for _, label in rows])
    probs = np.array([np.nan if p.prob_fake is None else p.prob_fake for p in predictions])
    scored = np.isfinite(probs)
    metrics = compute_metrics(labels[scored], probs[scored], detector.spec.threshold)
    real = labels == 0
    flagged = np.array([p.label == "fake" for p in predictions])  # the verdicts predict gives
    uncertain = np.array([p.label == "uncertain" for p in predictions])
    return {
        "n": len(rows),
        "no_face": int((~scored).sum()),
        "roc_auc": metrics["roc_auc"],
        "accuracy": metrics["accuracy"],
        "real_called_fake": float(flagged[real].mean()),
        "fake_called_fake": float(flagged[~real].mean()),
        "uncertain": float(uncertain.mean()),
        "img_per_s": len(rows) / seconds,
    }


def training_files(models: list[str], data: Path, split: str) -> frozenset[str]:
    """Every file of the split that one of the models trained or calibrated on (by path or bytes)."""
    from deepfake_detector.data import discover
    from deepfake_detector.evaluation.holdout import exclude_training, load_training_data
    from deepfake_detector.locate import model_dir

    out: set[str] = set()
    for model in models:
        training = load_training_data(model_dir(model))
        for name in ("dfdc", "stylegan-ffhq"):
            manifest = discover(data / name).split(split.lower().replace("validation", "val"))
            out |= {path for path, _ in exclude_training(manifest, training)[1].excluded}
    return frozenset(out)


def conditions(
    data: Path, split: str, per_class: int, exclude: frozenset[str]
) -> list[tuple[str, list, Callable | None]]:
    dfdc = sample(data / "dfdc", split, per_class, exclude=exclude)
    gan = sample(data / "stylegan-ffhq", split, per_class, exclude=exclude)
    out: list[tuple[str, list, Callable | None]] = [("dfdc crops (crop path)", dfdc, None)]
    for side in FACE_SIZES:
        out.append(
            (
                f"dfdc in 1280x960 frames, face {side} px",
                dfdc,
                lambda im, rng, s=side: embed_in_frame(im, s, rng),
            )
        )
    out.append(("stylegan-ffhq 256 px", gan, None))
    out.append(("stylegan-ffhq upscaled to 1024 px", gan, lambda im, rng: upscale(im, 1024)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--split", default="Test")
    parser.add_argument("--per-class", type=int, default=400)
    parser.add_argument("--out", default="benchmarks/results/in_the_wild")
    args = parser.parse_args()
    models = args.model or ["default"]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu_name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "")
    results = {
        "cpu": cpu_name or platform.processor(),
        "split": args.split,
        "per_class": args.per_class,
        "rows": [],
    }
    exclude = training_files(models, Path(args.data), args.split)
    results["left_out_training_files"] = len(exclude)
    for model in models:
        detector = Detector.load(model)
        for name, rows, transform in conditions(Path(args.data), args.split, args.per_class, exclude):
            row = {"model": model, "condition": name, **score(detector, rows, transform, seed=1)}
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# In the wild ({args.split}, {args.per_class} per class, `python benchmarks/in_the_wild.py`)",
        "",
        f'CPU: {results["cpu"]}. Every row: `Detector.predict(images, faces="auto")`.',
        "",
        f"Sampled after leaving out the {len(exclude)} Test files the models trained or calibrated on "
        "(byte-for-byte copies). *real called fake*, *fakes caught* and *uncertain* are `predict`'s "
        "verdicts (fake / real / uncertain, verdict.py); accuracy is at the threshold.",
        "",
        "| model | condition | ROC-AUC | accuracy | real called fake | fakes caught | uncertain | no face | img/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['model']} | {r['condition']} | {r['roc_auc']:.3f} | {r['accuracy']:.3f} | "
            f"{r['real_called_fake']:.1%} | {r['fake_called_fake']:.1%} | {r['uncertain']:.1%} | "
            f"{r['no_face']} | {r['img_per_s']:.1f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
