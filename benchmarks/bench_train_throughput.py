"""Training images/s of `seed-cnn`: this project's pipeline vs the notebook's Keras pipeline.

Both run the notebook's recipe (128 px, batch 256, the same augmentation, Adam 1e-4) on the same
dfdc Train images on this machine, one after the other. The Keras side runs in its own virtual
environment with TensorFlow (`make notebook-env` creates `.venv-notebook`), so TensorFlow's pins
never touch the project's; without it only our side is measured and the file says so.

    python benchmarks/bench_train_throughput.py [--images 2048] [--keras-python .venv-notebook/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def ours(data: Path, images: int) -> dict:
    """The real `train()` on a subset: decode once into the cache, then epochs over it."""
    from deepfake_detector.training import train
    from deepfake_detector.training.callbacks import read_metrics

    per_class = images // 2
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(
            str(data),
            preset="seed",
            out=Path(tmp) / "run",
            overrides={
                "epochs": 2,
                "limit_per_class": per_class,
                "train_fraction": 1.0,
                "val_fraction": 0.2,
            },
            progress=False,
        )
        wall = time.perf_counter() - start
        rows = read_metrics(Path(tmp) / "run" / "metrics.csv")
    # Epoch 0 includes warm-up; epoch 1 is the steady state.
    return {
        "pipeline": "deepfake-detector (torch, channels_last, uint8 cache + albumentations)",
        "train_images_per_epoch": 2 * per_class,
        "img_per_s_epoch1": float(rows[-1]["img_per_s"]),
        "img_per_s_epoch0": float(rows[0]["img_per_s"]),
        "wall_seconds_total": round(wall, 1),
    }


KERAS_SCRIPT = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from keras import layers, models, optimizers
from keras.src.legacy.preprocessing.image import ImageDataGenerator
root, steps = sys.argv[1], int(sys.argv[2])
gen = ImageDataGenerator(rescale=1./255, rotation_range=30, width_shift_range=0.2, height_shift_range=0.2,
                         shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
flow = gen.flow_from_directory(root, target_size=(128, 128), batch_size=256, class_mode="binary", seed=0)
model = models.Sequential([layers.Input((128, 128, 3)),
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(256, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5), layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=optimizers.Adam(1e-4), loss="binary_crossentropy", metrics=["accuracy"])
model.fit(flow, steps_per_epoch=1, epochs=1, verbose=0)  # warm-up (graph build)
start = time.perf_counter()
model.fit(flow, steps_per_epoch=steps, epochs=1, verbose=0)
seconds = time.perf_counter() - start
print(json.dumps({"img_per_s": steps * 256 / seconds, "seconds": seconds, "params": model.count_params()}))
"""


def keras(data: Path, images: int, python: Path) -> dict | None:
    if not python.is_file():
        return None
    steps = max(2, images // 256)
    proc = subprocess.run(
        [str(python), "-c", KERAS_SCRIPT, str(data / "Train"), str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["pipeline"] = "notebook (Keras ImageDataGenerator.flow_from_directory + model.fit)"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dfdc"))
    parser.add_argument("--images", type=int, default=2048, help="training images per epoch measured")
    parser.add_argument("--keras-python", type=Path, default=Path(".venv-notebook/bin/python"))
    args = parser.parse_args()
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "images": args.images,
        "ours": ours(args.data, args.images),
        "keras_notebook": keras(args.data, args.images, args.keras_python),
    }
    if result["keras_notebook"]:
        result["speedup"] = round(
            result["ours"]["img_per_s_epoch1"] / result["keras_notebook"]["img_per_s"], 2
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    keras_line = (
        f"| notebook Keras pipeline | {result['keras_notebook']['img_per_s']:.1f} |"
        if result["keras_notebook"]
        else "| notebook Keras pipeline | not measured (TensorFlow not installed) |"
    )
    (RESULTS / "train_throughput.md").write_text(
        "| seed-cnn training, 128 px, batch 256 | images/s |\n|---|---|\n"
        f"| deepfake-detector | {result['ours']['img_per_s_epoch1']:.1f} |\n{keras_line}\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
