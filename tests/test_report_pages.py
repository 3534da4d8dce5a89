"""The HTML pages people read: the demo's conclusion.html (rendered from small inputs), the evaluation
report (a tiny evaluate run with a stand-in scorer) and the EDA report, checked in headless Chromium
at a desktop and a phone width: nothing wider than the window, every picture loaded and inside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_service_e2e import headless_chromium

from deepfake_detector.data.train_manifest import TrainedFile, file_sha256
from deepfake_detector.evaluation.conclusion import render_conclusion, thumbnail_uri
from deepfake_detector.evaluation.evaluate import evaluate_datasets
from deepfake_detector.evaluation.holdout import TrainingData
from deepfake_detector.spec import ModelSpec

VIEWPORTS = ((1280, 800), (390, 844))
LONG_NAME = "a_very_long_file_name_without_any_break_" * 4 + "end.png"

LAYOUT = """
() => {
  const width = window.innerWidth;
  const images = [...document.images].map(img => {
    const box = img.getBoundingClientRect();
    return { src: img.src.slice(0, 30), alt: img.alt, complete: img.complete, natural: img.naturalWidth,
             width: box.width, left: box.left, right: box.right };
  });
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: width, images };
}
"""


def write_image(path: Path, seed: int, size: tuple[int, int] = (64, 64), bright: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 120, (size[1], size[0], 3), dtype=np.uint8)
    if bright:
        pixels[8:30, 8:30] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from headless_chromium()


def assert_fits(browser: Any, page_path: Path, shots: Path) -> None:
    """At each viewport, closed and with every <details> opened: no horizontal page scroll, every
    image decoded and no wider than the window."""
    for width, height in VIEWPORTS:
        page = browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.goto(page_path.as_uri(), wait_until="load")
        for state in ("closed", "open"):
            if state == "open":
                page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
            layout = page.evaluate(LAYOUT)
            where = f"{page_path.name} at {width}x{height}, details {state}"
            assert layout["innerWidth"] == width
            assert layout["scrollWidth"] <= layout["innerWidth"], f"{where}: page scrolls sideways"
            assert layout["images"], f"{where}: no images"
            for image in layout["images"]:
                assert image["complete"] and image["natural"] > 0, f"{where}: {image} not loaded"
                assert image["width"] <= width and image["right"] <= width + 0.5, f"{where}: {image} too wide"
                assert image["left"] >= -0.5, f"{where}: {image} starts left of the window"
        page.screenshot(path=str(shots / f"{page_path.stem}-{width}.png"), full_page=True)
        page.close()
        assert errors == []


# ------------------------------------------------------------------------------------------ conclusion


def conclusion_inputs(folder: Path) -> dict[str, Any]:
    pictures = [write_image(folder / f"img{i}.png", i, bright=i % 2 == 0) for i in range(5)]
    pictures.append(write_image(folder / LONG_NAME, 9, size=(1600, 400)))  # a wide picture, a long name
    labels = ["fake", "real", "uncertain", "", "banana", "real"]
    truths = ["fake", "fake", "real", "real", "fake", "real"]
    predictions = [
        {"path": str(p), "label": label, "prob_fake": None if not label else 0.1 + 0.15 * i,
         "error": "not an image" if not label else "", "thumbnail": thumbnail_uri(p)}
        for i, (p, label) in enumerate(zip(pictures, labels, strict=True))
    ]  # fmt: skip
    metrics = {
        "dfdc": {"roc_auc": 0.95, "accuracy": 0.88, "balanced_accuracy": 0.88, "f1": 0.87, "eer": 0.12,
                 "ece": 0.02, "threshold": 0.53, "n_real": 100, "n_fake": 100, "seen_in_training": True,
                 "confusion_matrix": [[90, 10], [14, 86]], "training_overlap": {"n_excluded": 0}},
        "stylegan-ffhq": {"roc_auc": 0.5, "accuracy": 0.5, "balanced_accuracy": 0.5, "f1": 0.4, "eer": 0.5,
                          "ece": 0.2, "threshold": 0.53, "n_real": 50, "n_fake": 50, "seen_in_training": False,
                          "confusion_matrix": [[30, 20], [30, 20]], "training_overlap": {"n_excluded": 3}},
    }  # fmt: skip
    return {
        "data_name": "dfdc",
        "command": "make demo DATA=../shared/data/" + "x" * 150,
        "eda": {
            "counts": {
                "train": {"real": 40, "fake": 41},
                "val": {"real": 5, "fake": 5},
                "test": {"real": 6, "fake": 6},
            },
            "duplicates": {"exact": [["a", "b"]], "cross_split": {"exact": [True]}},
            "unreadable": [{"path": "x", "reason": "empty file"}],
        },  # fmt: skip
        "evaluations": [("The shipped default model on the test split", metrics), ("A short run", metrics)],
        "predictions": predictions,
        "truths": {str(p): t for p, t in zip(pictures, truths, strict=True)},
        "links": {"EDA report": "eda/report.html", "Predictions (JSONL)": "predictions.jsonl"},
        "timings": {"eda": 12.4, "train": 60.0},
    }


def test_conclusion_shows_pictures_verdicts_counts_and_meaning(tmp_path: Path) -> None:
    html = render_conclusion(**conclusion_inputs(tmp_path))
    assert html.count('<img src="data:image/jpeg;base64,') == 6
    statuses = [part.split('"')[0] for part in html.split('data-status="')[1:]]
    assert statuses == ["right", "wrong", "uncertain", "none", "none", "right"]
    assert html.count("✗ wrong call") == 1 and "1 of 6 called wrong" in html
    assert "verdict: <b>no verdict</b>" in html and "not an image" in html
    assert '<td class="name">all</td><td>51</td><td>52</td><td>103</td>' in html
    assert "{&#39;" not in html and "{'" not in html and '{"' not in html  # no raw JSON dicts any more
    assert "At chance on stylegan-ffhq (ROC-AUC 0.50)" in html and "Reliable on dfdc (ROC-AUC 0.95)" in html
    assert '<a href="eda/report.html">EDA report</a>' in html and 'href="predictions.jsonl"' in html
    assert "eda: 12 s" in html


def test_conclusion_fits_desktop_and_phone(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "conclusion.html"
    page.write_text(render_conclusion(**conclusion_inputs(tmp_path / "pics")), encoding="utf-8")
    assert_fits(browser, page, tmp_path)


# ------------------------------------------------------------------------------------------ evaluation


class BrightnessScorer:
    """A stand-in model: brighter images score more fake (the fakes carry a bright square)."""

    spec = ModelSpec(architecture="stub", img_size=64, threshold=0.5, name="stub", trained_on=["elsewhere"])

    def predict_logits(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([(float(image.mean()) - 100.0) / 5.0 for image in images])


@pytest.fixture(scope="module")
def evaluation_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalpages")
    data = root / "mixed"
    for i in range(6):
        write_image(data / "Real" / f"real_{i}.png", i)
        write_image(data / "Fake" / f"fake_{i}.png", 100 + i, bright=True)
    write_image(data / "Real" / LONG_NAME, 50, size=(300, 120))
    (data / "Fake" / f"broken_{LONG_NAME}").write_bytes(b"not a png")
    only_real = root / "only-real"
    for i in range(4):
        write_image(only_real / "Real" / f"r{i}.png", 200 + i)
    seen = data / "Fake" / "fake_0.png"
    training = TrainingData(
        folder=str(root),
        seed=42,
        files=[TrainedFile("src", str(root / "elsewhere.png"), "elsewhere.png", 1, "train", seen.stat().st_size,
                           file_sha256(seen))],
        hashed=True,
    )  # fmt: skip
    out = root / "eval"
    metrics = evaluate_datasets(
        BrightnessScorer(), [data, only_real], out, robustness=True, training=training
    )
    assert metrics["mixed"]["training_overlap"]["n_excluded"] == 1
    return out / "report.html"


def test_evaluation_report_has_meaning_glossary_and_overlap(evaluation_report: Path) -> None:
    html = evaluation_report.read_text()
    assert '<h2 id="meaning">What this means</h2>' in html and "Reliable on mixed" in html
    assert "only-real holds only real images" in html
    for term in ("ROC-AUC", "accuracy", "F1", "EER", "ECE", "Brier", "log loss", "AP", "real-called-fake rate",
                 "threshold"):  # fmt: skip
        assert f"<dt>{term}</dt>" in html, term
    assert "1 image(s) left out" in html and "the same bytes as train file src/elsewhere.png" in html
    assert json.loads((evaluation_report.parent / "metrics.json").read_text())["mixed"]["training_overlap"][
        "examples"
    ] == ["fake_0.png"]


def test_evaluation_report_fits_desktop_and_phone(
    browser: Any, evaluation_report: Path, tmp_path: Path
) -> None:
    assert_fits(browser, evaluation_report, tmp_path)


# ------------------------------------------------------------------------------------------ EDA


@pytest.fixture(scope="module")
def eda_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_detector.eda import run_eda

    root = tmp_path_factory.mktemp("edapages")
    data = root / "data"
    seed = 0
    for split, n in (("Train", 6), ("Validation", 2), ("Test", 2)):
        for cls in ("Real", "Fake"):
            for i in range(n):
                seed += 1
                write_image(data / split / cls / f"img{i}.png", seed, bright=cls == "Fake")
    for i in range(12):  # a long list of unreadable files, collapsed in the report
        (data / "Train" / "Real" / f"empty_{i}_{LONG_NAME}").write_bytes(b"")
    (data / "Test" / "Real" / LONG_NAME).write_bytes((data / "Train" / "Real" / "img0.png").read_bytes())
    out = root / "eda"
    run_eda(data, out, workers=1, show_progress=False, faces_per_class=2)
    return out / "report.html"


def test_eda_report_has_contents_and_collapsed_long_tables(eda_report: Path) -> None:
    html = eda_report.read_text()
    assert '<nav class="toc"' in html and '<a href="#duplicates">' in html and 'id="duplicates"' in html
    assert "<details><summary>12 file(s) with the reason</summary>" in html  # long: starts collapsed
    assert "<details open><summary>1 group(s), cross-split first</summary>" in html  # short: open


def test_eda_report_fits_desktop_and_phone(browser: Any, eda_report: Path, tmp_path: Path) -> None:
    assert_fits(browser, eda_report, tmp_path)


# ------------------------------------------------------------------------- predict --report and --heatmap
def test_predict_summary_and_heatmap_pages_fit_desktop_and_phone(browser: Any, tmp_path: Path) -> None:
    from service_helpers import dfdc_image
    from typer.testing import CliRunner

    from deepfake_detector.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    for k, cls in enumerate(("Real", "Fake", "Fake")):
        (folder / f"{k}_{LONG_NAME}.jpg").write_bytes(dfdc_image(cls, k).read_bytes())
    report, heat = tmp_path / "report", tmp_path / "heat"
    result = CliRunner().invoke(
        app, ["predict", str(folder), "--model", "fast", "--report", str(report), "--heatmap", str(heat)]
    )
    assert result.exit_code == 0, result.output
    assert_fits(browser, report / "index.html", tmp_path)
    assert_fits(browser, heat / "index.html", tmp_path)
