"""The one image pipeline every entry point uses: sources -> decoded images -> regions -> scores.

    expand_sources(...)   paths, folders, globs, bytes, RGB arrays, PIL images, videos -> Items
    prepare(item, ...)    decode an image and cut its regions by the model's crop spec (data/crop.py)
    score_prepared(...)   all regions of a batch of images scored together, split back per image

`Detector.predict`, the service's uploads, video frames, Ray batches and `evaluate` all go
through `prepare`/`cut_regions` and `score_crops`, so the same image gets the same number
whichever way it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepfake_detector.data.crop import FacesMode, Regions, cut_regions, dataset_region
from deepfake_detector.data.images import DEFAULT_MAX_PIXELS, ImageInfo, UnreadableImage, load_image
from deepfake_detector.inference.batching import iter_mapped
from deepfake_detector.inference.engines import Engine
from deepfake_detector.inference.results import FaceResult, Prediction, verdict
from deepfake_detector.spec import ModelSpec, preprocess_batch

ItemKind = Literal["image", "video", "error"]


@dataclass
class Item:
    """One input to score: a file path, encoded bytes or a decoded RGB array, and its display name."""

    name: str
    kind: ItemKind
    data: str | bytes | np.ndarray | None = None
    error: str = ""


@dataclass
class Prepared:
    """One image after decoding and region cutting (what the scorer receives)."""

    name: str
    regions: Regions = field(default_factory=Regions)
    error: str = ""
    image: np.ndarray | None = None  # the decoded image, kept only when asked (heatmaps, service)
    info: ImageInfo | None = None


def is_single_source(sources: Any) -> bool:
    """One source given on its own rather than a list of them (a str is not a list of characters)."""
    return isinstance(sources, str | Path | bytes | bytearray | np.ndarray) or is_pil_image(sources)


def expand_sources(sources: Any) -> list[Item]:
    """Items for any mix of sources, in order; folders and globs expanded as on the command line."""
    from deepfake_detector.inference.inputs import expand_inputs
    from deepfake_detector.inference.video.frames import is_video_path

    if sources is None:
        raise ValueError("no input: give a path, folder, glob, bytes, an RGB array or a PIL image")
    items: list[Item] = []
    for index, source in enumerate([sources] if is_single_source(sources) else list(sources)):
        if isinstance(source, str | Path):
            expanded = expand_inputs([str(source)])
            items += [Item(p, "video" if is_video_path(p) else "image", p) for p in expanded.paths]
            items += [Item(given, "error", error=why) for given, why in expanded.problems]
        elif isinstance(source, bytes | bytearray):
            items.append(Item(f"<bytes {index}>", "image", bytes(source)))
        elif isinstance(source, np.ndarray):
            items.append(_array_item(source, f"<array {index}>"))
        elif is_pil_image(source):
            items.append(_array_item(_pil_rgb(source), f"<image {index}>"))
        else:
            why = f"cannot score a {type(source).__name__}: give a path, bytes, an RGB array or a PIL image"
            items.append(Item(f"<input {index}>", "error", error=why))
    return items


def as_rgb_array(array: Any, name: str = "array") -> np.ndarray:
    """An HxWx3 uint8 RGB array from uint8 or float [0, 255] / [0, 1] data, gray or RGBA; else ValueError."""
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: expected an RGB numpy array, got {type(array).__name__}")
    if array.size == 0:
        raise ValueError(f"{name}: empty array {array.shape}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected HxWx3 (RGB), got shape {array.shape}")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: holds NaN or infinite values")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"{name}: values must lie in [0, 255] (or [0, 1] for floats)")
    if array.dtype.kind == "f" and values.max() <= 1.0:
        values = values * 255.0
    return np.ascontiguousarray(np.rint(values).astype(np.uint8))


def decode(item: Item, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The item's RGB uint8 pixels (raises UnreadableImage for a bad file)."""
    if isinstance(item.data, np.ndarray):
        return item.data
    return load_image(item.data, max_pixels=max_pixels)  # type: ignore[arg-type]


def prepare(
    item: Item,
    spec: ModelSpec,
    faces: FacesMode = "auto",
    *,
    keep_image: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Prepared:
    """Decode one image and cut the regions to score; never raises for a bad input (runs in workers)."""
    if item.kind == "error":
        return Prepared(item.name, error=item.error)
    try:
        image = decode(item, max_pixels)
        regions = cut_regions(image, spec.crop_spec, int(spec.img_size), faces)
        return Prepared(item.name, regions, image=image if keep_image else None)
    except UnreadableImage as exc:
        return Prepared(item.name, error=exc.reason)
    except Exception as exc:  # one odd file must never stop a run over thousands
        return Prepared(item.name, error=f"cannot process ({type(exc).__name__}: {exc})")


def score_crops(
    engine: Engine, spec: ModelSpec, crops: Sequence[np.ndarray], batch_size: int = 64
) -> np.ndarray:
    """Raw fake-logits for size x size RGB uint8 regions, in batches. An engine that prepares its
    own inputs (several networks with their own sizes, e.g. a CLIP head fused with a CNN) takes
    the uint8 regions themselves through `logits_from_crops`."""
    if not len(crops):
        return np.zeros(0, dtype=np.float32)
    own = getattr(engine, "logits_from_crops", None)
    parts = []
    for i in range(0, len(crops), batch_size):
        chunk = list(crops[i : i + batch_size])
        out = own(np.stack(chunk)) if own is not None else engine.logits(preprocess_batch(chunk, spec))
        parts.append(np.asarray(out).reshape(-1))
    return np.concatenate(parts)


def split_back(values: np.ndarray, counts: Iterable[int]) -> list[np.ndarray]:
    """Per-image slices of a flat array of per-region values."""
    out, cursor = [], 0
    for count in counts:
        out.append(values[cursor : cursor + count])
        cursor += count
    return out


def score_prepared(
    engine: Engine, spec: ModelSpec, batch: Sequence[Prepared], batch_size: int = 64
) -> list[Prediction]:
    """One Prediction per prepared image: its regions scored with the rest of the batch."""
    logits = score_crops(engine, spec, [crop for p in batch for crop in p.regions.crops], batch_size)
    probs = spec.probability(logits)
    rule = spec.rule
    out: list[Prediction] = []
    for prepared, face_probs in zip(
        batch, split_back(probs, (len(p.regions.crops) for p in batch)), strict=True
    ):
        regions = prepared.regions
        faces = [
            FaceResult(box=box, prob_fake=float(p), label=rule.label(float(p)))
            for box, p in zip(regions.boxes, face_probs, strict=True)
        ]
        prediction = verdict(prepared.name, faces, rule, note=regions.note)
        prediction.error = "" if faces else prepared.error
        out.append(prediction)
    return out


def region_decoder(spec: ModelSpec, faces: FacesMode) -> Callable[..., Iterator[tuple[int, Any]]]:
    """An evaluation decoder: (index, the image's region as training cut it, or UnreadableImage)."""

    def one(path: str) -> Any:
        try:
            return dataset_region(load_image(path), spec.crop_spec, int(spec.img_size), faces)[0]
        except UnreadableImage as exc:
            return exc
        except Exception as exc:  # one odd file must not stop an evaluation of thousands
            return UnreadableImage(path, f"cannot process ({type(exc).__name__}: {exc})")

    def decode(paths: Sequence[str], size: int, workers: int = 2) -> Iterator[tuple[int, Any]]:
        yield from iter_mapped(paths, one, workers=workers)

    return decode


def _array_item(array: np.ndarray, name: str) -> Item:
    try:
        return Item(name, "image", as_rgb_array(array, name))
    except ValueError as exc:
        return Item(name, "error", error=str(exc).removeprefix(f"{name}: "))


def is_pil_image(value: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a core dependency
        return False
    return isinstance(value, Image.Image)


def _pil_rgb(image: Any) -> np.ndarray:
    from PIL import ImageOps

    return np.asarray((ImageOps.exif_transpose(image) or image).convert("RGB"))
