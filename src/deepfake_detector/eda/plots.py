"""Figures for the report, each returned as a `data:image/png;base64,...` URI so the HTML file
stands alone. Uses matplotlib's object API (no pyplot global state, no display needed)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np

from deepfake_detector.eda.spectrum import radial_profile
from deepfake_detector.eda.stats import ImageRecord, property_values

CLASS_COLOURS = {"real": "#2b7bba", "fake": "#d7301f"}
HISTOGRAM_PROPERTIES = (
    ("width", "width (px)"),
    ("height", "height (px)"),
    ("aspect", "aspect ratio (w/h)"),
    ("file_size", "file size (KiB)"),
    ("jpeg_quality", "estimated JPEG quality"),
    ("brightness", "mean brightness (0-255)"),
)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def to_data_uri(fig, dpi: int = 90) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_to_data_uri(rgb: np.ndarray, lossless: bool = False) -> str:
    """An RGB array as an embedded PNG (exact) or JPEG (small, for thumbnails)."""
    from PIL import Image

    buffer = io.BytesIO()
    if lossless:
        Image.fromarray(rgb).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def counts_chart(counts: Mapping[str, Mapping[str, int]]) -> str:
    fig = _new_figure(6, 3)
    ax = fig.add_subplot()
    splits = list(counts)
    x = np.arange(len(splits))
    for offset, name in ((-0.2, "real"), (0.2, "fake")):
        values = [counts[s].get(name, 0) for s in splits]
        bars = ax.bar(x + offset, values, width=0.4, label=name, color=CLASS_COLOURS[name])
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x, splits)
    ax.set_ylabel("readable images")
    ax.legend()
    return to_data_uri(fig)


def property_histograms(records: Mapping[str, Sequence[ImageRecord]]) -> str:
    fig = _new_figure(12, 6)
    axes = fig.subplots(2, 3).reshape(-1)
    for ax, (name, label) in zip(axes, HISTOGRAM_PROPERTIES, strict=True):
        series = {cls: np.asarray(property_values(recs, name), dtype=float) for cls, recs in records.items()}
        if name == "file_size":
            series = {cls: v / 1024 for cls, v in series.items()}
        present = [v for v in series.values() if v.size]
        if not present:
            ax.set_title(f"{label}: no data", fontsize=9)
            continue
        joined = np.concatenate(present)
        lo, hi = float(joined.min()), float(joined.max())
        bins = np.linspace(lo - 0.5, hi + 0.5, 2) if lo == hi else np.linspace(lo, hi, 41)
        for cls, values in series.items():
            if values.size:
                weights = np.full(values.size, 1.0 / values.size)
                ax.hist(values, bins=bins, weights=weights, alpha=0.55, label=cls, color=CLASS_COLOURS[cls])
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("share of class", fontsize=8)
        ax.legend(fontsize=7)
    return to_data_uri(fig)


def spectra(mean_spectra: Mapping[str, np.ndarray]) -> str:
    """Mean log-amplitude per class, fake minus real, and the radial profiles."""
    panels = list(mean_spectra.items())
    has_both = "real" in mean_spectra and "fake" in mean_spectra
    n = len(panels) + (1 if has_both else 0) + 1
    fig = _new_figure(3.2 * n, 3.2)
    axes = fig.subplots(1, n, squeeze=False)[0]
    # The DC term is ~0 after mean removal (log -> very negative): percentiles keep it off the scale.
    low, high = np.percentile(np.stack([s for _, s in panels]), [0.5, 99.9])
    for ax, (name, spectrum) in zip(axes[: len(panels)], panels, strict=True):
        image = ax.imshow(spectrum, cmap="viridis", vmin=low, vmax=high)
        ax.set_title(f"{name}: mean log-amplitude", fontsize=9)
        ax.axis("off")
        fig.colorbar(image, ax=ax, shrink=0.7)
    if has_both:
        ax = axes[len(panels)]
        difference = mean_spectra["fake"] - mean_spectra["real"]
        limit = float(np.percentile(np.abs(difference), 99.9)) or 1.0
        image = ax.imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_title("fake - real", fontsize=9)
        ax.axis("off")
        fig.colorbar(image, ax=ax, shrink=0.7)
    ax = axes[-1]
    for name, spectrum in panels:
        profile = radial_profile(spectrum)
        radius = np.arange(1, profile.size)  # without the removed DC term
        ax.plot(radius / profile.size, profile[1:], label=name, color=CLASS_COLOURS[name])
    ax.set_xlabel("frequency (fraction of Nyquist)", fontsize=8)
    ax.set_ylabel("mean log-amplitude", fontsize=8)
    ax.set_title("radial profile", fontsize=9)
    ax.legend(fontsize=7)
    return to_data_uri(fig)
