"""Per-image measurements (one decode per image) and the per-class statistics built from them."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import imagehash
import numpy as np
from PIL import Image

from deepfake_detector.data.images import UnreadableImage, load_image, read_file, read_image_info
from deepfake_detector.eda.jpeg_quality import estimate_jpeg_quality
from deepfake_detector.eda.spectrum import log_amplitude_spectrum

ANALYSIS_SIZE = 128  # decode size for hashing, colour and spectrum: the training input size
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as in PIL's convert("L")


@dataclass(frozen=True)
class ImageRecord:
    """What one readable image contributes to the report; `index` is its position in the manifest."""

    index: int
    sha256: str
    phash: int
    width: int
    height: int
    format: str
    mode: str
    file_size: int
    jpeg_quality: int | None
    jpeg_quality_exact: bool | None
    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def brightness(self) -> float:
        return sum(weight * value for weight, value in zip(LUMA_WEIGHTS, self.mean_rgb, strict=True))


@dataclass
class ChunkResult:
    """Records of one batch of images plus per-label sums of their spectra and pixels."""

    size: int
    records: list[ImageRecord] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    spectrum_sum: np.ndarray | None = None  # (2, size, size) float64 by label, not fftshift-ed
    image_sum: np.ndarray | None = None  # (2, size, size, 3) float64
    label_count: np.ndarray | None = None  # (2,) images summed per label

    def __post_init__(self) -> None:
        if self.spectrum_sum is None:
            self.spectrum_sum = np.zeros((2, self.size, self.size))
            self.image_sum = np.zeros((2, self.size, self.size, 3))
            self.label_count = np.zeros(2, dtype=np.int64)

    def merge(self, other: ChunkResult) -> None:
        self.records.extend(other.records)
        self.failures.extend(other.failures)
        self.spectrum_sum += other.spectrum_sum
        self.image_sum += other.image_sum
        self.label_count += other.label_count


def _jpeg_quality(data: bytes) -> tuple[int | None, bool | None]:
    try:
        quantization = getattr(Image.open(io.BytesIO(data)), "quantization", None)
    except Exception:
        return None, None
    estimate = estimate_jpeg_quality(quantization)
    return (estimate.quality, estimate.exact) if estimate else (None, None)


def perceptual_hash(rgb: np.ndarray) -> int:
    bits = imagehash.phash(Image.fromarray(rgb)).hash.reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def analyse_image(index: int, path: str, size: int = ANALYSIS_SIZE) -> tuple[ImageRecord, np.ndarray]:
    """Measure one file: header facts, content hash, one reduced-size decode. Raises UnreadableImage."""
    data = read_file(path)  # the loader's reasons: not found, permission denied, link loop...
    try:
        info = read_image_info(data)
        rgb = load_image(data, size=size)
    except UnreadableImage as exc:
        raise UnreadableImage(path, exc.reason) from exc
    quality, exact = _jpeg_quality(data) if info.format in ("JPEG", "MPO") else (None, None)
    mean, std = cv2.meanStdDev(rgb)
    record = ImageRecord(
        index=index,
        sha256=hashlib.sha256(data).hexdigest(),
        phash=perceptual_hash(rgb),
        width=info.width if info.orientation < 5 else info.height,
        height=info.height if info.orientation < 5 else info.width,
        format=info.format,
        mode=info.mode,
        file_size=len(data),
        jpeg_quality=quality,
        jpeg_quality_exact=exact,
        mean_rgb=tuple(float(v) for v in mean.reshape(3)),
        std_rgb=tuple(float(v) for v in std.reshape(3)),
    )
    return record, rgb


def analyse_chunk(items: Sequence[tuple[int, str, int]], size: int = ANALYSIS_SIZE) -> ChunkResult:
    """Worker entry point: (index, path, label) items -> records, failures and per-label sums.

    Never raises for a bad file: each failure becomes (index, reason).
    """
    result = ChunkResult(size)
    for index, path, label in items:
        try:
            record, rgb = analyse_image(index, path, size)
            spectrum = log_amplitude_spectrum(rgb, centred=False)
        except UnreadableImage as exc:
            result.failures.append((index, exc.reason))
            continue
        except Exception as exc:  # a decoder bug must not abort a scan of thousands of files
            result.failures.append((index, f"unexpected error while analysing ({type(exc).__name__}: {exc})"))
            continue
        result.records.append(record)
        result.spectrum_sum[label] += spectrum
        result.image_sum[label] += rgb
        result.label_count[label] += 1
    return result


def numeric_summary(values: Sequence[float], discrete: bool = False) -> dict[str, float | int | list]:
    """min/max/mean/median/percentiles (and for discrete properties the most common values)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    summary: dict[str, float | int | list] = {"n": int(arr.size)}
    for name, value in (
        ("min", arr.min()),
        ("max", arr.max()),
        ("mean", arr.mean()),
        ("std", arr.std()),
        ("median", np.median(arr)),
        ("p05", np.percentile(arr, 5)),
        ("p95", np.percentile(arr, 95)),
    ):
        summary[name] = round(float(value), 4)
    if discrete:
        common = Counter(np.round(arr, 4).tolist()).most_common(5)
        summary["most_common"] = [[value, count] for value, count in common]
    return summary


def category_counts(values: Sequence[str]) -> dict[str, int]:
    return dict(Counter(values).most_common())


NUMERIC_PROPERTIES = ("width", "height", "aspect", "file_size", "jpeg_quality", "brightness")
DISCRETE_PROPERTIES = frozenset({"width", "height", "aspect", "jpeg_quality"})
CATEGORICAL_PROPERTIES = ("format", "mode", "resolution")


def property_values(records: Sequence[ImageRecord], name: str) -> list:
    if name == "resolution":
        return [f"{r.width}x{r.height}" for r in records]
    if name == "jpeg_quality":
        return [r.jpeg_quality for r in records if r.jpeg_quality is not None]
    return [getattr(r, name) for r in records]


def class_properties(records: Sequence[ImageRecord]) -> dict[str, dict]:
    """Everything behind the property plots for one class."""
    out: dict[str, dict] = {
        name: numeric_summary(property_values(records, name), discrete=name in DISCRETE_PROPERTIES)
        for name in NUMERIC_PROPERTIES
    }
    out.update({name: category_counts(property_values(records, name)) for name in CATEGORICAL_PROPERTIES})
    jpegs = [r for r in records if r.jpeg_quality is not None]
    out["jpeg_standard_tables"] = {
        "jpeg_files": len(jpegs),
        "exact_ijg_tables": sum(1 for r in jpegs if r.jpeg_quality_exact),
    }
    return out


def colour_statistics(records: Sequence[ImageRecord]) -> dict[str, list[float] | float]:
    """Mean and spread of per-image channel means, mean per-image channel std, mean brightness."""
    if not records:
        return {}
    means = np.array([r.mean_rgb for r in records])
    stds = np.array([r.std_rgb for r in records])
    return {
        "mean_rgb": means.mean(axis=0).round(3).tolist(),
        "std_of_mean_rgb": means.std(axis=0).round(3).tolist(),
        "mean_within_image_std_rgb": stds.mean(axis=0).round(3).tolist(),
        "mean_brightness": round(float(np.dot(means.mean(axis=0), LUMA_WEIGHTS)), 3),
    }
