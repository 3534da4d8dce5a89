"""EDA: duplicate finders, JPEG quality, shortcut checks, spectra, and `deepfake-detector eda` end to end
on a small synthetic dataset with bad files in it."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_images import huge_png
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.images import load_image
from deepfake_detector.data.manifest import discover
from deepfake_detector.eda import run_eda
from deepfake_detector.eda.duplicates import (
    exact_duplicate_groups,
    hamming_distance,
    near_duplicate_groups,
    near_pairs,
)
from deepfake_detector.eda.jpeg_quality import estimate_jpeg_quality
from deepfake_detector.eda.shortcuts import check_properties, separation_auc, shortcut_warning
from deepfake_detector.eda.spectrum import log_amplitude_spectrum, radial_profile
from deepfake_detector.eda.stats import ANALYSIS_SIZE, ImageRecord, perceptual_hash
from deepfake_detector.eda.summary import imbalance_warnings


def smooth_image(seed: int, size: int = 128) -> np.ndarray:
    """A photo-like random image: coarse random colour blobs, smoothly upsampled."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return np.asarray(coarse.resize((size, size), Image.BICUBIC))


def encode(rgb: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


# --- duplicate finders ---------------------------------------------------------------------------


def test_exact_groups_by_digest():
    assert exact_duplicate_groups(["a", "b", "a", "c", "b", "a"]) == [[0, 2, 5], [1, 4]]
    assert exact_duplicate_groups(["a", "b", "c"]) == []


def test_near_pairs_match_brute_force():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    planted = []
    for value in base[:120]:  # neighbours at 1..7 flipped bits
        flips = rng.choice(64, size=int(rng.integers(1, 8)), replace=False)
        planted.append(int(value) ^ sum(1 << int(b) for b in flips))
    hashes = np.unique(np.concatenate([base, np.array(planted, dtype=np.uint64)]))
    values = [int(h) for h in hashes]
    for max_distance in (0, 2, 4, 6):
        brute = [
            (i, j)
            for i in range(len(values))
            for j in range(i + 1, len(values))
            if hamming_distance(values[i], values[j]) <= max_distance
        ]
        assert near_pairs(hashes, max_distance) == brute
        assert max_distance == 0 or brute  # the planted neighbours make the check meaningful


def test_near_groups_leave_pure_byte_copies_to_the_exact_finder():
    hashes = [0b1111, 0b1111, 0b1110, 1 << 40]
    # items 0 and 1 are the same bytes; 2 differs by one bit from them; 3 is far away
    assert near_duplicate_groups(hashes, ["x", "x", "y", "z"], max_distance=2) == [[0, 1, 2]]
    assert near_duplicate_groups(hashes[:2], ["x", "x"], max_distance=2) == []


def test_near_groups_are_fast_for_thousands_of_images():
    import time

    rng = np.random.default_rng(0)
    hashes = [int(h) for h in rng.integers(0, 2**63, 20_000, dtype=np.int64)]
    hashes += [h ^ 0b101 for h in hashes[:500]]  # 500 near copies
    started = time.process_time()  # CPU time: robust to a busy shared machine
    groups = near_duplicate_groups(hashes, [str(i) for i in range(len(hashes))], max_distance=4)
    assert time.process_time() - started < 10
    assert len(groups) == 500 and all(len(g) == 2 for g in groups)


def test_near_copy_found_distinct_images_not_paired():
    original = smooth_image(1, 160)
    files = {
        "original": encode(original, "PNG"),
        "byte_copy": encode(original, "PNG"),
        "reencoded_resized": encode(
            np.asarray(Image.fromarray(original).resize((120, 120))), "JPEG", quality=60
        ),
    }
    for seed in range(2, 12):
        files[f"distinct{seed}"] = encode(smooth_image(seed, 160), "JPEG", quality=90)
    names = list(files)
    digests = [hashlib.sha256(files[n]).hexdigest() for n in names]
    hashes = [perceptual_hash(load_image(files[n], size=ANALYSIS_SIZE)) for n in names]

    assert [[names[i] for i in g] for g in exact_duplicate_groups(digests)] == [["original", "byte_copy"]]
    near = [[names[i] for i in g] for g in near_duplicate_groups(hashes, digests, max_distance=4)]
    assert near == [["original", "byte_copy", "reencoded_resized"]]


# --- per-image facts -------------------------------------------------------------------------------


@pytest.mark.parametrize("quality", [10, 35, 50, 75, 90, 95])
def test_jpeg_quality_estimate_from_quantisation_tables(quality):
    image = Image.open(io.BytesIO(encode(smooth_image(0, 64), "JPEG", quality=quality)))
    estimate = estimate_jpeg_quality(image.quantization)
    assert estimate is not None and estimate.quality == quality and estimate.exact


def test_jpeg_quality_custom_tables_and_non_jpeg():
    custom = [list(range(1, 65)), [7] * 64]
    image = Image.open(io.BytesIO(encode(smooth_image(0, 64), "JPEG", qtables=custom)))
    estimate = estimate_jpeg_quality(image.quantization)
    assert estimate is not None and not estimate.exact
    assert estimate_jpeg_quality(None) is None
    assert (
        estimate_jpeg_quality(
            getattr(Image.open(io.BytesIO(encode(smooth_image(0, 8), "PNG"))), "quantization", None)
        )
        is None
    )


def test_spectrum_shows_a_periodic_upsampling_trace():
    smooth = smooth_image(3, 64)
    checker = (np.indices((64, 64)).sum(0) % 2 * 40).astype(np.uint8)[..., None]
    traced = np.clip(smooth.astype(int) + checker, 0, 255).astype(np.uint8)
    clean, dirty = log_amplitude_spectrum(smooth), log_amplitude_spectrum(traced)
    assert clean.shape == (64, 64)
    # after fftshift the (Nyquist, Nyquist) frequency of a one-pixel checkerboard sits at [0, 0]
    assert dirty[0, 0] - clean[0, 0] > 5
    np.testing.assert_allclose(np.fft.fftshift(log_amplitude_spectrum(smooth, centred=False)), clean)
    profile = radial_profile(dirty)
    assert profile.shape == (32,)
    np.testing.assert_allclose(radial_profile(np.full((16, 16), 2.0)), 2.0)


# --- shortcut and imbalance warnings ---------------------------------------------------------------


def record(i: int, width: int, height: int, fmt: str, size: int, quality: int | None) -> ImageRecord:
    return ImageRecord(
        index=i, sha256=str(i), phash=i, width=width, height=height, format=fmt, mode="RGB", file_size=size,
        jpeg_quality=quality, jpeg_quality_exact=quality is not None, mean_rgb=(100.0 + i % 7, 90.0, 80.0),
        std_rgb=(30.0, 30.0, 30.0),
    )  # fmt: skip


def test_shortcut_flags_resolution_and_format_differences():
    real = [record(i, 178, 218, "PNG", 40_000 + i, None) for i in range(30)]
    fake = [record(i, 256, 256, "JPEG", 40_000 + i, 90) for i in range(30)]
    flagged = {c.property: c for c in check_properties(real, fake) if c.flagged}
    assert {"width", "height", "aspect", "resolution", "format"} <= set(flagged)
    assert "file_size" not in flagged and "brightness" not in flagged
    message = shortcut_warning(flagged["resolution"])
    assert "178x218" in message and "256x256" in message and "shortcut" in message


def test_no_shortcut_for_matching_classes():
    real = [record(i, 224, 224, "JPEG", 5_000 + 13 * i, 75) for i in range(40)]
    fake = [record(i, 224, 224, "JPEG", 5_000 + 13 * i + 5, 75) for i in range(40)]
    assert not [c for c in check_properties(real, fake) if c.flagged]


def test_separation_auc_is_the_pairwise_win_rate():
    rng = np.random.default_rng(1)
    real, fake = rng.integers(0, 10, 200), rng.integers(2, 12, 150)  # many ties
    wins = (fake[None, :] > real[:, None]).mean() + 0.5 * (fake[None, :] == real[:, None]).mean()
    assert separation_auc(real, fake) == pytest.approx(wins)
    assert separation_auc([1, 2], [3, 4]) == 1.0 and separation_auc([3, 4], [1, 2]) == 0.0


def test_imbalance_warnings():
    warnings = imbalance_warnings(
        {"train": {"real": 100, "fake": 20}, "val": {"real": 5, "fake": 0}, "test": {"real": 10, "fake": 9}}
    )
    assert len(warnings) == 2
    assert "'train'" in warnings[0] and "5.0:1" in warnings[0]
    assert "'val'" in warnings[1] and "no readable fake" in warnings[1]


# --- end to end ----------------------------------------------------------------------------------

BAD_FILES = {
    "Train/Real/empty.jpg": "empty file",
    "Train/Fake/truncated.jpg": "truncated",
    "Validation/Real/page.jpg": "not an image",
    "Test/Fake/bomb.png": "decompression bomb",
}
GOOD = {"Train": (4, 4), "Validation": (2, 2), "Test": (2, 2)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eda") / "data"
    seed = 100
    for split, (n_real, n_fake) in GOOD.items():
        for cls, n in (("Real", n_real), ("Fake", n_fake)):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                seed += 1
                (root / split / cls / f"img{i}.jpg").write_bytes(
                    encode(smooth_image(seed, 96), "JPEG", quality=85)
                )
    shutil.copy(root / "Train" / "Real" / "img0.jpg", root / "Test" / "Real" / "copy_of_train_img0.jpg")
    (root / "Train" / "Real" / "empty.jpg").write_bytes(b"")
    whole = encode(smooth_image(1, 96), "JPEG", quality=85)
    (root / "Train" / "Fake" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "Validation" / "Real" / "page.jpg").write_text("<html><body>Access denied</body></html>")
    huge_png(root / "Test" / "Fake" / "bomb.png")
    return root


@pytest.fixture(scope="module")
def eda_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eda_out") / "report"
    result = CliRunner().invoke(
        app, ["eda", str(dataset), "--out", str(out), "--workers", "2", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_eda_lists_every_bad_file_with_its_reason(dataset, eda_run):
    out, _ = eda_run
    summary = json.loads((out / "summary.json").read_text())
    reasons = {row["path"]: row["reason"] for row in summary["unreadable"]}
    assert set(reasons) == {str(dataset / rel) for rel in BAD_FILES}
    for rel, expected in BAD_FILES.items():
        assert expected in reasons[str(dataset / rel)]


def test_eda_counts_the_readable_rest(dataset, eda_run):
    out, output = eda_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {
        "train": {"real": 4, "fake": 4},
        "val": {"real": 2, "fake": 2},
        "test": {"real": 3, "fake": 2},
    }
    assert summary["files_found"]["train"] == {"real": 5, "fake": 5}
    assert summary["n_files"] == 21 and summary["n_readable"] == 17
    assert summary["layout"] == "splits"
    assert summary["manifest_hash"] == discover(dataset).digest()
    assert summary["properties"]["real"]["width"]["median"] == 96
    assert summary["properties"]["fake"]["jpeg_quality"]["most_common"] == [[85, 8]]
    assert "4 file(s) could not be read" in " ".join(summary["warnings"])
    assert "test: 3 real, 2 fake" in output


def test_eda_finds_the_cross_split_copy(dataset, eda_run):
    out, _ = eda_run
    duplicates = json.loads((out / "summary.json").read_text())["duplicates"]
    copy = {str(dataset / "Train/Real/img0.jpg"), str(dataset / "Test/Real/copy_of_train_img0.jpg")}
    assert [set(group) for group in duplicates["exact"]] == [copy]
    assert duplicates["cross_split"]["exact"] == [True]
    assert duplicates["near"] == []  # the synthetic images are all distinct


def test_eda_report_is_self_contained_and_embeds_images(dataset, eda_run):
    out, _ = eda_run
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count('src="data:image/png;base64,') >= 4  # charts, mean images, preprocessing
    assert html.count('src="data:image/jpeg;base64,') >= 8  # sample thumbnails
    assert "http://" not in html and "https://" not in html and "<script" not in html
    for rel, reason in BAD_FILES.items():
        assert str(dataset / rel) in html and reason in html
    assert "copy_of_train_img0.jpg" in html


def test_eda_sample_option(dataset, tmp_path):
    summary = run_eda(dataset, tmp_path / "o", sample=1, workers=1, show_progress=False)
    assert summary["files_found"] == {split: {"real": 1, "fake": 1} for split in ("train", "val", "test")}
    assert summary["options"]["sample"] == 1
    assert (tmp_path / "o" / "report.html").is_file()


def test_eda_cli_rejects_a_folder_without_a_dataset(tmp_path):
    (tmp_path / "cats").mkdir()
    result = CliRunner().invoke(app, ["eda", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # rich wraps long lines
    assert str(tmp_path) in message and "no split folders" in message
    assert not (tmp_path / "o").exists()
