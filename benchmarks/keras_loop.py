"""The seed notebook's prediction loop, as written there: one image at a time through Keras.

    python benchmarks/keras_loop.py ../shared/data/dfdc/Test [--limit N]

Builds the notebook's CNN (random weights: speed does not depend on them), then for every image
runs the notebook's `preprocess_image` (cv2.imread, BGR->RGB, resize to 128, /255) and
`model.predict` on a batch of one. Needs TensorFlow (`make notebook-env` makes .venv-notebook
with it); benchmark only.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np


def build_model():  # noqa: ANN201 (keras types only exist with tensorflow installed)
    from tensorflow.keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from tensorflow.keras.models import Sequential

    return Sequential(
        [
            Conv2D(32, (3, 3), activation="relu", input_shape=(128, 128, 3)),
            MaxPooling2D(pool_size=(2, 2)),
            Conv2D(64, (3, 3), activation="relu"),
            MaxPooling2D(pool_size=(2, 2)),
            Conv2D(128, (3, 3), activation="relu"),
            MaxPooling2D(pool_size=(2, 2)),
            Conv2D(256, (3, 3), activation="relu"),
            MaxPooling2D(pool_size=(2, 2)),
            Flatten(),
            Dense(128, activation="relu"),
            Dropout(0.5),
            Dense(1, activation="sigmoid"),
        ]
    )


def preprocess_image(image_path: str, target_size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """The notebook's function (OpenCV); Pillow's bilinear resize where OpenCV is not installed."""
    try:
        import cv2
    except ImportError:
        from PIL import Image

        with Image.open(image_path) as img:
            return np.asarray(img.convert("RGB").resize(target_size, Image.BILINEAR)) / 255.0
    image = cv2.imread(image_path)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, target_size)
    return image / 255.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    paths = glob.glob(os.path.join(args.data, "Fake", "*.jpg")) + glob.glob(
        os.path.join(args.data, "Real", "*.jpg")
    )
    paths = paths[: args.limit] if args.limit else paths
    model = build_model()
    fake = 0
    for path in paths:
        image = np.expand_dims(preprocess_image(path), axis=0)
        prediction = model.predict(image, verbose=0)[0][0]
        fake += int(prediction > 0.5)
    print(f"{len(paths)} images, {fake} called Deepfake")


if __name__ == "__main__":
    main()
