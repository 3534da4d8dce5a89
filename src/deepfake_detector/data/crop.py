"""The face region: how a face is cut from any image, defined once and stored with each model.

Training, evaluation, `predict`, the service, videos and `predict-dataset` all call `cut_regions`
with the model's `CropSpec`, so a model sees at prediction time exactly the kind of crop it was
trained on, whether the face came as a tight crop or inside a large photo.

    detect faces (RetinaFace) -> box grown by `margin` per side -> made square -> optionally
    rotated so the eyes are level -> the parts outside the image filled (`fill`) -> resized

`--faces auto` decides by looking, not by the image's shape: an image is "already a face crop"
when the detector finds exactly one face whose box spans at least `crop_min_fill` of the image's
shorter side. When no face is found, `auto` scores a small square-ish image whole (a tight crop
the detector missed; training does the same), and reports "no face found" for anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from deepfake_detector.data.faces import Box, Face
from deepfake_detector.data.images import resize_image

FacesMode = Literal["auto", "always", "never"]
FACES_MODES: tuple[str, ...] = ("auto", "always", "never")
Fill = Literal["replicate", "constant", "shift"]
FILLS: tuple[str, ...] = ("replicate", "constant", "shift")

# No face found: an image this small and square is taken for a tight crop the detector missed.
CROP_SHAPED_MAX_SIDE = 512
CROP_SHAPED_MAX_ASPECT = 1.25

FaceFinder = Callable[[np.ndarray], list[Face]]
# Region side / face scale that makes a dfdc crop's own region the crop itself (median 2.24 on
# dfdc Validation), so tight face-swap crops and faces found in photos give the same region.
LANDMARK_SCALE = 2.25
MIN_LANDMARK_SCALE = 4.0  # pixels; below this the landmarks are degenerate and the box is used


@dataclass(frozen=True)
class CropSpec:
    """How a model's face regions are cut (stored as "crop" in model.json).

    detector: "retinaface", or "none" for a model that always scores whole images.
    anchor: what places the region. "landmarks": a square centred between the eyes' and the
        mouth's midpoints, `landmark_scale` times the face's scale (the larger of the eye distance
        and the eye-to-mouth distance) on a side; it stays put whether the face fills a tight crop
        or sits in a large photo (measured on dfdc Validation crops, alone vs inside a frame: centre
        within 2 px, scale ratio 1.00 +- 0.04, against a box that grows 20% taller in the frame).
        "box": the detector's box (faces without landmarks always use it).
    margin: the region grown by this fraction of its size on every side.
    square: make the region square around the box centre (else it keeps the box's aspect).
    align: rotate the region so that the eyes are level (needs the detector's landmarks).
    fill: what the region holds where it runs outside the image: "replicate" the edge pixels,
        "constant" black, or "shift" (older models) the region moved inside the image and clipped.
    crop_min_fill: `--faces auto` takes an image for a face crop when its one face's box spans
        at least this fraction of the image's shorter side.
    crops: how an image that already is a face crop is scored: "recut" cuts its face like any
        other (models trained on recut faces), "whole" scores the image as it is (older models).
    """

    detector: Literal["retinaface", "none"] = "retinaface"
    anchor: Literal["landmarks", "box"] = "landmarks"
    landmark_scale: float = LANDMARK_SCALE
    margin: float = 0.0
    square: bool = True
    align: bool = False
    fill: Fill = "replicate"
    crop_min_fill: float = 0.6
    crops: Literal["recut", "whole"] = "recut"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """A stable text naming this spec, for cache keys."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown crop field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def legacy(cls, margin: float) -> CropSpec:
        """The policy of models saved before crop specs existed (model.json with only face_margin)."""
        return cls(margin=float(margin), fill="shift", crops="whole", crop_min_fill=0.6)


@dataclass
class Regions:
    """The regions of one image to score, where they lie, and what was seen."""

    crops: list[np.ndarray] = field(default_factory=list)  # each size x size x 3 uint8
    boxes: list[Box] = field(default_factory=list)  # the face boxes (or the whole image) in its pixels
    note: str = ""
    faces_found: int = 0  # what the detector found (0 when it did not run)
    face_crop: bool = False  # the image itself is a face crop (one face filling most of it)
    face_fraction: float = 0.0  # largest face box side / image's shorter side


def crop_shaped(width: int, height: int) -> bool:
    """Small and square-ish, as face-crop datasets are (dfdc 224, FFHQ/StyleGAN 256)."""
    if width < 1 or height < 1:
        return False
    longest, shortest = max(width, height), min(width, height)
    return longest <= CROP_SHAPED_MAX_SIDE and longest / shortest <= CROP_SHAPED_MAX_ASPECT


def cut_regions(
    image: np.ndarray, spec: CropSpec, size: int, faces: FacesMode = "auto", finder: FaceFinder | None = None
) -> Regions:
    """The regions to score in an RGB uint8 image under a face policy and a model's crop spec."""
    if faces not in FACES_MODES:
        raise ValueError(f"faces must be one of {', '.join(FACES_MODES)}, got {faces!r}")
    height, width = image.shape[:2]
    whole_box = (0, 0, width, height)
    if faces == "never" or spec.detector == "none":
        why = "whole image" if faces == "never" else "whole image (this model uses no face detector)"
        return Regions([resize_image(image, size)], [whole_box], why)
    if finder is None:
        from deepfake_detector.data.faces import find_faces as finder
    found = finder(image)
    largest = max((_side(face.box) for face in found), default=0)
    fraction = largest / max(1, min(width, height))
    is_crop = len(found) == 1 and fraction >= spec.crop_min_fill
    stats = {"faces_found": len(found), "face_crop": is_crop, "face_fraction": round(fraction, 4)}
    if not found:
        if faces == "auto" and crop_shaped(width, height):
            note = "no face found; scored whole as a face crop (small and square)"
            return Regions([resize_image(image, size)], [whole_box], note, **stats)
        return Regions(note="no face found", **stats)
    if is_crop and faces == "auto" and spec.crops == "whole":
        note = f"face crop (its face spans {fraction:.0%}); scored whole"
        return Regions([resize_image(image, size)], [whole_box], note, **stats)
    crops = [cut_face(image, face, spec, size) for face in found]
    if is_crop:
        note = f"face crop (its face spans {fraction:.0%})"
    else:
        note = f"{len(found)} faces detected" if len(found) > 1 else "1 face detected"
    return Regions(crops, [face.box for face in found], note, **stats)


def primary(regions: Regions) -> int | None:
    """Index of the region with the largest box (the face a training image is about), or None."""
    if not regions.crops:
        return None
    return max(range(len(regions.boxes)), key=lambda i: _side(regions.boxes[i]))


def cut_face(image: np.ndarray, face: Face, spec: CropSpec, size: int) -> np.ndarray:
    """One face's region of an RGB image, size x size (see CropSpec)."""
    height, width = image.shape[:2]
    if spec.fill == "shift":
        x1, y1, x2, y2 = shifted_region(face.box, spec.margin, width, height)
        return resize_image(np.ascontiguousarray(image[y1:y2, x1:x2]), size)
    x1, y1, x2, y2 = landmark_region(face, spec) or region_box(face.region_box, spec)
    angle = _eye_angle(face) if spec.align else 0.0
    if angle:  # cut a region large enough to hold the rotated square, rotate, keep the centre
        grow = (abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))) * 0.5
        cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * grow, (y2 - y1) * grow
        big = (round(cx - half_w), round(cy - half_h), round(cx + half_w), round(cy + half_h))
        region = _rotate(padded_slice(image, big, spec.fill), angle, spec.fill)
        top, left = (region.shape[0] - (y2 - y1)) // 2, (region.shape[1] - (x2 - x1)) // 2
        region = region[top : top + y2 - y1, left : left + x2 - x1]
    else:
        region = padded_slice(image, (x1, y1, x2, y2), spec.fill)
    return resize_image(np.ascontiguousarray(region), size)


def region_box(box: Box, spec: CropSpec) -> Box:
    """The face box grown by the margin (and squared), in image pixels; may run outside the image."""
    x1, y1, x2, y2 = box
    w, h = (x2 - x1) * (1 + 2 * spec.margin), (y2 - y1) * (1 + 2 * spec.margin)
    if spec.square:
        w = h = max(w, h)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = round(cx - w / 2.0), round(cy - h / 2.0)
    return left, top, left + max(1, round(w)), top + max(1, round(h))


def landmark_region(face: Face, spec: CropSpec) -> Box | None:
    """The square region placed by the face's landmarks (see CropSpec.anchor), or None without them."""
    if spec.anchor != "landmarks" or len(face.landmarks) < 5:
        return None
    points = np.asarray(face.landmarks[:5], dtype=np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:5].mean(axis=0)
    scale = max(float(np.linalg.norm(points[0] - points[1])), float(np.linalg.norm(eyes - mouth)))
    if scale < MIN_LANDMARK_SCALE:
        return None
    cx, cy = (eyes + mouth) / 2.0
    side = max(1, round(scale * spec.landmark_scale * (1 + 2 * spec.margin)))
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    return left, top, left + side, top + side


def padded_slice(image: np.ndarray, box: Box, fill: Fill) -> np.ndarray:
    """image[y1:y2, x1:x2] where the box may run outside the image, filled as `fill` says."""
    import cv2

    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    if cx1 >= cx2 or cy1 >= cy2:  # entirely outside: nothing of the image to show
        return np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
    inner = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
    pads = (cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2)
    if not any(pads):
        return inner
    border = cv2.BORDER_REPLICATE if fill == "replicate" else cv2.BORDER_CONSTANT
    return cv2.copyMakeBorder(inner, *pads, border, value=(0, 0, 0))


def shifted_region(box: Box, margin: float, width: int, height: int) -> Box:
    """Older models' region: the grown square moved inside the image where it fits, clipped where not."""
    x1, y1, x2, y2 = box
    side = min(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin), float(max(width, height)))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = min(max(cx - side / 2.0, 0.0), max(width - side, 0.0))
    top = min(max(cy - side / 2.0, 0.0), max(height - side, 0.0))
    return (
        int(round(left)),
        int(round(top)),
        int(round(min(left + side, width))),
        int(round(min(top + side, height))),
    )


def _side(box: Box) -> int:
    return max(box[2] - box[0], box[3] - box[1])


def _eye_angle(face: Face) -> float:
    eyes = face.eyes
    if eyes is None:
        return 0.0
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def _rotate(region: np.ndarray, angle: float, fill: Fill) -> np.ndarray:
    import cv2

    h, w = region.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    border = cv2.BORDER_REPLICATE if fill == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(region, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


@dataclass(frozen=True)
class RegionStats:
    """What face finding saw in one dataset image (kept beside the crop cache, summed for reports)."""

    faces_found: int
    face_fraction: float
    used: str  # "face", "largest face", "whole image (no face found)" or "whole image"


def dataset_region(
    image: np.ndarray, spec: CropSpec | None, size: int, faces: FacesMode = "auto"
) -> tuple[np.ndarray, RegionStats]:
    """The one region a dataset image contributes to training or evaluation: its largest face cut by
    the spec, else (no face found, or spec None / faces "never") the whole image; never dropped."""
    if spec is None or faces == "never":
        return resize_image(image, size), RegionStats(0, 0.0, "whole image")
    regions = cut_regions(image, spec, size, faces)
    index = primary(regions)
    stats = {"faces_found": regions.faces_found, "face_fraction": regions.face_fraction}
    if index is None:
        return resize_image(image, size), RegionStats(**stats, used="whole image (no face found)")
    used = "largest face" if len(regions.crops) > 1 else "face"
    return regions.crops[index], RegionStats(**stats, used=used)


def summarize_regions(stats: list[RegionStats], labels: np.ndarray) -> dict[str, Any]:
    """Per class: images with 0 / 1 / 2+ faces, how each was used, and the face-size distribution
    (largest face side / image's shorter side), so a shortcut (real and fake differ) shows."""
    out: dict[str, Any] = {}
    for label, name in ((0, "real"), (1, "fake")):
        mine = [s for s, y in zip(stats, labels, strict=True) if int(y) == label]
        sizes = np.array([s.face_fraction for s in mine if s.faces_found], dtype=np.float64)
        used: dict[str, int] = {}
        for s in mine:
            used[s.used] = used.get(s.used, 0) + 1
        out[name] = {
            "images": len(mine),
            "faces_0": sum(1 for s in mine if s.faces_found == 0),
            "faces_1": sum(1 for s in mine if s.faces_found == 1),
            "faces_2_plus": sum(1 for s in mine if s.faces_found >= 2),
            "used": used,
            "face_fraction_percentiles": {
                str(q): round(float(np.percentile(sizes, q)), 4) for q in (5, 25, 50, 75, 95)
            }
            if len(sizes)
            else {},
        }
    return out
