"""What a prediction says about one input image, and how it is written as a row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deepfake_detector.fileio import printable

ROW_FIELDS = ("path", "label", "prob_fake", "confidence", "threshold", "faces", "error", "note", "boxes")


@dataclass
class FaceResult:
    """One scored region: a detected face, or the whole image when it already is a face crop."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in the original image's pixels
    prob_fake: float
    label: str
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

    `label` is "fake" or "real" from the most suspicious face (the max of prob_fake over faces);
    it is "" with prob_fake None when nothing was scored: an unreadable file (`error` says why)
    or a photo in which no face was found (`note` says so).
    """

    path: str
    label: str
    prob_fake: float | None
    threshold: float
    faces: list[FaceResult] = field(default_factory=list)
    error: str = ""
    note: str = ""

    @property
    def confidence(self) -> float | None:
        """Probability of the reported label: prob_fake when fake, 1 - prob_fake when real."""
        if self.prob_fake is None:
            return None
        return self.prob_fake if self.label == "fake" else 1.0 - self.prob_fake

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `boxes` is a list of per-face dicts."""
        return {
            "path": self.path,
            "label": self.label,
            "prob_fake": None if self.prob_fake is None else round(float(self.prob_fake), 6),
            "confidence": None if self.confidence is None else round(float(self.confidence), 6),
            "threshold": float(self.threshold),
            "faces": len(self.faces),
            "error": self.error,
            "note": self.note,
            "boxes": [face.to_dict() for face in self.faces],
        }

    def to_row(self) -> dict[str, Any]:
        """Flat row for CSV: numbers as they are, empty strings for missing values, `boxes` as JSON text."""
        data = self.to_dict()
        data["path"] = printable(data["path"])  # CSV is text: a non-UTF-8 name's bytes shown as \xNN
        data["boxes"] = json.dumps(data["boxes"], separators=(",", ":"))
        return {key: "" if data[key] is None else data[key] for key in ROW_FIELDS}


def label_for(prob_fake: float, threshold: float) -> str:
    return "fake" if prob_fake >= threshold else "real"
