"""What a prediction says about one input image, and how it is written as a row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.fileio import printable
from deepfake_detector.verdict import DEFAULT_UNCERTAIN_BAND, NO_VERDICT, DecisionRule

ROW_FIELDS = (
    "path", "label", "prob_fake", "confidence", "threshold", "uncertain_band", "face_count", "faces", "error", "note"
)  # fmt: skip


@dataclass
class FaceResult:
    """One scored region: a detected face, or the whole image when it already is a face crop."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in the original image's pixels
    prob_fake: float
    label: str  # "fake", "real" or "uncertain" (verdict.DecisionRule)
    heatmap: str | None = None  # path of the Grad-CAM overlay PNG, when asked for

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [int(v) for v in self.box],
            "prob_fake": round(float(self.prob_fake), 6),
            "label": self.label,
            "heatmap": self.heatmap,
        }


@dataclass
class Prediction:
    """The verdict on one input.

    `label` is "fake", "real" or "uncertain" (the rule in verdict.py: the threshold, a band around
    it, and never a label its own probability contradicts), judged on the most suspicious face (the
    max of prob_fake over faces). It is "" with prob_fake None when nothing was scored: an
    unreadable file (`error` says why) or a photo in which no face was found (`note` says so).
    The same field names are used by `to_dict` (JSON, JSONL), `to_row` (CSV) and the REST API.
    """

    path: str
    label: str
    prob_fake: float | None
    threshold: float
    faces: list[FaceResult] = field(default_factory=list)
    error: str = ""
    note: str = ""
    uncertain_band: float = DEFAULT_UNCERTAIN_BAND

    @property
    def confidence(self) -> float | None:
        """Probability of the reported label (always > 0.5); None when uncertain or not scored."""
        return DecisionRule.confidence(self.prob_fake, self.label)

    @property
    def face_count(self) -> int:
        return len(self.faces)

    @property
    def ok(self) -> bool:
        return not self.error

    def with_rule(self, rule: DecisionRule) -> Prediction:
        """The same scores judged by another threshold / band: labels change, probabilities do not."""
        faces = [replace(face, label=rule.label(face.prob_fake)) for face in self.faces]
        label = self.label if self.prob_fake is None else rule.label(self.prob_fake)
        return replace(self, label=label, faces=faces, threshold=rule.threshold, uncertain_band=rule.band)

    def plot(self, image: Any = None, max_side: int | None = None) -> np.ndarray:
        """The input as an RGB uint8 array with each face boxed and labelled ("fake · P(fake) 0.91")
        and the verdict across the top. `image`: the array, PIL image or path that was scored; by
        default the file at `path` is read again (inputs given as bytes or arrays must pass it)."""
        from deepfake_detector.inference.annotate import annotate

        return annotate(self._source_image(image), self, max_side)

    def save(self, path: str | Path, image: Any = None, max_side: int | None = None) -> Path:
        """Write `plot()` to `path` (.jpg, .png or .webp); returns the path."""
        from deepfake_detector.inference.annotate import save_picture

        return save_picture(self.plot(image, max_side), path)

    def _source_image(self, image: Any) -> np.ndarray:
        from deepfake_detector.data.images import load_image
        from deepfake_detector.inference.pipeline import as_rgb_array, is_pil_image

        if image is None:
            if not Path(self.path).is_file():
                raise ValueError(f"{self.path}: not a file to read again; pass the image: plot(image=...)")
            return load_image(self.path)
        if isinstance(image, (str, Path)):
            return load_image(str(image))
        if is_pil_image(image):
            image = np.asarray(image.convert("RGB"))
        return as_rgb_array(image, self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `faces` is a list of per-face dicts."""
        return {
            "path": self.path,
            "label": self.label,
            "prob_fake": _rounded(self.prob_fake),
            "confidence": _rounded(self.confidence),
            "threshold": _rounded(self.threshold),
            "uncertain_band": _rounded(self.uncertain_band),
            "face_count": self.face_count,
            "faces": [face.to_dict() for face in self.faces],
            "error": self.error,
            "note": self.note,
        }

    def to_row(self) -> dict[str, Any]:
        """Flat row for CSV: numbers as they are, empty strings for missing values, `faces` as JSON text."""
        data = self.to_dict()
        data["path"] = printable(data["path"])  # CSV is text: a non-UTF-8 name's bytes shown as \xNN
        data["faces"] = json.dumps(data["faces"], separators=(",", ":"))
        return {key: "" if data[key] is None else data[key] for key in ROW_FIELDS}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def verdict(path: str, faces: list[FaceResult], rule: DecisionRule, note: str = "") -> Prediction:
    """The verdict on an input from its scored faces: the most suspicious face decides."""
    if not faces:
        return Prediction(path, NO_VERDICT, None, rule.threshold, [], note=note, uncertain_band=rule.band)
    top = max(face.prob_fake for face in faces)
    return Prediction(path, rule.label(top), top, rule.threshold, faces, note=note, uncertain_band=rule.band)
