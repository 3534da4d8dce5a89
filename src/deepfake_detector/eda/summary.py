"""The numbers of the report (summary.json): counts, properties, colour, leakage and warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepfake_detector.data.manifest import CLASS_NAMES, Manifest
from deepfake_detector.eda.duplicates import exact_duplicate_groups, near_duplicate_groups
from deepfake_detector.eda.shortcuts import check_properties, shortcut_warning
from deepfake_detector.eda.stats import ChunkResult, ImageRecord, class_properties, colour_statistics

IMBALANCE_RATIO = 1.5  # majority / minority above this gets a warning


def records_by_class(manifest: Manifest, records: Sequence[ImageRecord]) -> dict[str, list[ImageRecord]]:
    by_class: dict[str, list[ImageRecord]] = {name: [] for name in CLASS_NAMES}
    for record in records:
        by_class[manifest.samples[record.index].class_name].append(record)
    return {name: recs for name, recs in by_class.items() if recs}


def readable_counts(manifest: Manifest, records: Sequence[ImageRecord]) -> dict[str, dict[str, int]]:
    counts = {split: dict.fromkeys(CLASS_NAMES, 0) for split in manifest.splits}
    for record in records:
        sample = manifest.samples[record.index]
        counts[sample.split][sample.class_name] += 1
    return counts


def imbalance_warnings(counts: dict[str, dict[str, int]]) -> list[str]:
    warnings = []
    for split, per_class in counts.items():
        real, fake = per_class.get("real", 0), per_class.get("fake", 0)
        if real == 0 or fake == 0:
            missing = "real" if real == 0 else "fake"
            warnings.append(f"class imbalance: split '{split}' has no readable {missing} images")
        elif max(real, fake) / min(real, fake) > IMBALANCE_RATIO:
            warnings.append(
                f"class imbalance: split '{split}' has {real} real vs {fake} fake images "
                f"({max(real, fake) / min(real, fake):.1f}:1); use class weights or balanced sampling, "
                "and report balanced metrics"
            )
    return warnings


def _duplicate_section(
    manifest: Manifest, records: Sequence[ImageRecord], max_distance: int
) -> dict[str, Any]:
    digests = [r.sha256 for r in records]
    exact = exact_duplicate_groups(digests)
    near = near_duplicate_groups([r.phash for r in records], digests, max_distance)

    def describe(groups: list[list[int]]) -> tuple[list[list[str]], list[bool], list[bool]]:
        samples = [[manifest.samples[records[i].index] for i in group] for group in groups]
        paths = [[s.path for s in group] for group in samples]
        cross_split = [len({s.split for s in group}) > 1 for group in samples]
        cross_class = [len({s.label for s in group}) > 1 for group in samples]
        return paths, cross_split, cross_class

    exact_paths, exact_split, exact_class = describe(exact)
    near_paths, near_split, near_class = describe(near)
    return {
        "near_max_distance": max_distance,
        "exact": exact_paths,
        "near": near_paths,
        "cross_split": {"exact": exact_split, "near": near_split},
        "cross_class": {"exact": exact_class, "near": near_class},
        "totals": {
            "exact_groups": len(exact),
            "exact_files": sum(len(g) for g in exact),
            "exact_cross_split_groups": sum(exact_split),
            "exact_cross_class_groups": sum(exact_class),
            "near_groups": len(near),
            "near_files": sum(len(g) for g in near),
            "near_cross_split_groups": sum(near_split),
            "near_cross_class_groups": sum(near_class),
        },
    }


def _leakage_warnings(duplicates: dict[str, Any]) -> list[str]:
    totals = duplicates["totals"]
    warnings = []
    for kind, label in (("exact", "exact duplicate"), ("near", "near-duplicate")):
        if totals[f"{kind}_cross_split_groups"]:
            warnings.append(
                f"leakage: {totals[f'{kind}_cross_split_groups']} {label} group(s) span more than one "
                "split; the same picture in train and val/test inflates the measured accuracy"
            )
        if totals[f"{kind}_cross_class_groups"]:
            warnings.append(
                f"real/fake pairs: {totals[f'{kind}_cross_class_groups']} {label} group(s) hold both real "
                "and fake images (a fake made from that real picture, or a wrong label); keep each group "
                "inside one split"
            )
    return warnings


def build_summary(
    manifest: Manifest, scan: ChunkResult, *, near_max_distance: int, options: dict[str, Any]
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready data; paths exactly as in the manifest."""
    records = scan.records
    by_class = records_by_class(manifest, records)
    counts = readable_counts(manifest, records)
    duplicates = _duplicate_section(manifest, records, near_max_distance)
    checks = check_properties(by_class["real"], by_class["fake"]) if {"real", "fake"} <= set(by_class) else []
    unreadable = [{"path": manifest.samples[i].path, "reason": reason} for i, reason in scan.failures]

    warnings = imbalance_warnings(counts)
    warnings += [shortcut_warning(c) for c in checks if c.flagged]
    warnings += _leakage_warnings(duplicates)
    if unreadable:
        warnings.append(f"{len(unreadable)} file(s) could not be read and are left out (see 'unreadable')")

    return {
        "root": manifest.root,
        "layout": manifest.layout,
        "manifest_hash": manifest.digest(),
        "options": options,
        "files_found": manifest.counts(),
        "counts": counts,
        "n_files": len(manifest),
        "n_readable": len(records),
        "unreadable": unreadable,
        "warnings": warnings,
        "properties": {name: class_properties(recs) for name, recs in by_class.items()},
        "shortcut_checks": [
            {
                "property": c.property,
                "measure": c.measure,
                "score": c.score,
                "flagged": c.flagged,
                "detail": c.detail,
            }
            for c in checks
        ],
        "colour": {name: colour_statistics(recs) for name, recs in by_class.items()},
        "duplicates": duplicates,
    }


def class_means(scan: ChunkResult) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mean log-amplitude spectrum and mean image per class present in the scan."""
    spectra, images = {}, {}
    for label, name in enumerate(CLASS_NAMES):
        n = int(scan.label_count[label])
        if n:
            spectra[name] = np.fft.fftshift(scan.spectrum_sum[label] / n)
            images[name] = scan.image_sum[label] / n
    return spectra, images
