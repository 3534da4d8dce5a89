"""Pictures of a verdict: the image with each face boxed and labelled in words and P(fake).

`annotate` is what `Prediction.plot()`, `predict --save DIR`, the heatmap page and the summary page
draw: a box per face coloured by its label (red fake, green real, amber uncertain) with
"fake · P(fake) 0.91" above it, and the image's verdict in a band across the top.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_detector.data.images import resize_image

if TYPE_CHECKING:
    from deepfake_detector.inference.results import Prediction

LABEL_RGB = {"fake": (210, 35, 35), "real": (35, 150, 60), "uncertain": (225, 140, 0), "": (110, 110, 110)}
SAVE_FORMATS = (".jpg", ".jpeg", ".png", ".webp")


def verdict_text(prediction: Prediction) -> str:
    """The image's verdict in words, e.g. "FAKE · P(fake) 0.91" or "no face found"."""
    if prediction.error:
        return f"unreadable: {prediction.error}"
    if prediction.prob_fake is None:
        return prediction.note or "no verdict"
    return f"{prediction.label.upper()} · P(fake) {prediction.prob_fake:.2f}"


def annotate(image: np.ndarray, prediction: Prediction, max_side: int | None = None) -> np.ndarray:
    """A copy of the RGB `image` (scaled to at most `max_side`) with the faces and verdict drawn on."""
    import cv2

    height, width = image.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = (resize_image(image, size) if scale < 1.0 else image).copy()
    side = max(picture.shape[:2])
    font, thick = max(0.4, side / 900), max(1, round(side / 400))
    boxes = [tuple(round(v * scale) for v in face.box) for face in prediction.faces]
    for face, (x1, y1, x2, y2) in zip(prediction.faces, boxes, strict=True):
        colour = LABEL_RGB.get(face.label, LABEL_RGB[""])
        cv2.rectangle(picture, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, thick + 1)
    band = LABEL_RGB.get(prediction.label, LABEL_RGB[""])
    band_bottom = _label(picture, verdict_text(prediction), (0, 0), band, font * 1.1, thick, min_top=0)
    for face, (x1, y1, _, _) in zip(prediction.faces, boxes, strict=True):
        colour = LABEL_RGB.get(face.label, LABEL_RGB[""])
        text = f"{face.label} · P(fake) {face.prob_fake:.2f}"
        _label(picture, text, (x1, y1), colour, font, thick, min_top=band_bottom)
    return picture


def _label(
    picture: np.ndarray,
    text: str,
    corner: tuple[int, int],
    colour: tuple[int, int, int],
    font: float,
    thick: int,
    min_top: int,
) -> int:
    """White text on a filled `colour` box just above `corner`, never above `min_top` (the verdict
    band's bottom; the band itself is drawn with min_top 0, at the top). Returns the box's bottom."""
    import cv2

    text = text.replace("·", "-")  # OpenCV's Hershey fonts are ASCII only
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    x, y = corner
    height = h + base + 4
    top = max(y - height, min_top) if min_top else 0
    x = max(0, min(x, picture.shape[1] - w - 4))
    cv2.rectangle(picture, (x, top), (x + w + 4, top + height), colour, -1)
    white = (255, 255, 255)
    cv2.putText(
        picture, text, (x + 2, top + h + 2), cv2.FONT_HERSHEY_SIMPLEX, font, white, thick, cv2.LINE_AA
    )
    return top + height


def save_picture(picture: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as .jpg / .png / .webp (by the suffix), atomically."""
    import cv2

    from deepfake_detector.fileio import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(f"{path}: cannot save as {suffix or 'no suffix'} (use {', '.join(SAVE_FORMATS)})")
    ok, buf = cv2.imencode(".jpg" if suffix == ".jpeg" else suffix, np.ascontiguousarray(picture[..., ::-1]))
    if not ok:
        raise ValueError(f"{path}: cannot encode the picture as {suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.tobytes())
    return path


def safe_stem(name: str) -> str:
    """A file-name-safe stem of an input's name ("image" for names like "<bytes 0>")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")[:60] or "image"


class AnnotatedWriter:
    """`predict --save DIR`: an annotated copy of each scored image, named after it (.jpg)."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.taken: set[str] = set()
        self.written = 0

    def add(self, batch: list, predictions: list[Prediction]) -> None:
        for prepared, prediction in zip(batch, predictions, strict=True):
            if prepared.image is not None:
                save_picture(annotate(prepared.image, prediction), self.out_dir / self._name(prediction.path))
                self.written += 1

    def _name(self, source: str) -> str:
        stem, k = safe_stem(source), 1
        name = f"{stem}.jpg"
        while name in self.taken:  # a/img.jpg and b/img.jpg: img.jpg, img-2.jpg
            k += 1
            name = f"{stem}-{k}.jpg"
        self.taken.add(name)
        return name

    def close(self) -> None:
        return None
