"""Estimate the quality setting a JPEG was saved with, from its quantisation tables.

Encoders based on libjpeg (PIL, OpenCV, most cameras' software) scale the two standard IJG tables
by the quality factor; finding the factor whose scaled tables are closest to the file's tables
recovers the setting. Tables that match no factor exactly come from a custom encoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# libjpeg jcparam.c, natural (row-major) order, as Pillow reports them in `img.quantization`.
IJG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
).reshape(64)
IJG_CHROMINANCE = np.full((8, 8), 99, dtype=np.int64)
IJG_CHROMINANCE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
IJG_CHROMINANCE = IJG_CHROMINANCE.reshape(64)

QUALITIES = np.arange(1, 101)


def scaled_tables(base: np.ndarray) -> np.ndarray:
    """(100, 64): `base` scaled for quality 1..100 exactly as libjpeg does (baseline-clamped)."""
    scale = np.where(QUALITIES < 50, 5000 // QUALITIES, 200 - 2 * QUALITIES)
    return np.clip((base[None, :] * scale[:, None] + 50) // 100, 1, 255)


_LUMA_BY_QUALITY = scaled_tables(IJG_LUMINANCE)
_CHROMA_BY_QUALITY = scaled_tables(IJG_CHROMINANCE)


@dataclass(frozen=True)
class JpegQuality:
    quality: int  # the closest IJG quality factor, 1..100
    exact: bool  # tables are exactly the IJG ones at that quality (else a custom encoder)


def estimate_jpeg_quality(quantization: Mapping[int, Sequence[int]] | None) -> JpegQuality | None:
    """Closest IJG quality for Pillow's `img.quantization` ({table id: 64 values}); None if absent."""
    if not quantization or 0 not in quantization or len(quantization[0]) != 64:
        return None
    error = np.abs(_LUMA_BY_QUALITY - np.asarray(quantization[0], dtype=np.int64)).sum(axis=1)
    if 1 in quantization and len(quantization[1]) == 64:
        error = error + np.abs(_CHROMA_BY_QUALITY - np.asarray(quantization[1], dtype=np.int64)).sum(axis=1)
    best = int(np.argmin(error))
    return JpegQuality(quality=int(QUALITIES[best]), exact=bool(error[best] == 0))
