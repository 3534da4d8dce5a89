"""Data layer: dataset discovery, safe image decoding, datasets and augmentation."""

from deepfake_detector.data.images import (
    ImageInfo,
    UnreadableImage,
    is_image_path,
    load_image,
    read_image_info,
)
from deepfake_detector.data.manifest import (
    CLASS_ALIASES,
    CLASS_NAMES,
    SPLIT_ALIASES,
    DatasetError,
    Manifest,
    Sample,
    assign_splits,
    discover,
    discover_split,
    read_csv_manifest,
)

__all__ = [
    "CLASS_ALIASES",
    "CLASS_NAMES",
    "SPLIT_ALIASES",
    "DatasetError",
    "ImageInfo",
    "Manifest",
    "Sample",
    "UnreadableImage",
    "assign_splits",
    "discover",
    "discover_split",
    "is_image_path",
    "load_image",
    "read_csv_manifest",
    "read_image_info",
]
