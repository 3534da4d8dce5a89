"""Perturbations, dataset naming, and `deepfake-detector evaluate` end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deepfake_detector.evaluation.evaluate import dataset_name, seen_in_training
from deepfake_detector.evaluation.metrics import METRIC_KEYS, TWO_CLASS_METRICS
from deepfake_detector.evaluation.robustness import PERTURBATIONS, perturb, robustness_table, severity_key


def textured_image(size: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus fine texture, so every perturbation has something to destroy."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    channels = [
        120
        + 80 * np.sin(2 * np.pi * (3 * xx + phase)) * np.cos(2 * np.pi * 2 * yy)
        + rng.normal(0, 12, xx.shape)
        for phase in (0.0, 0.3, 0.6)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_perturbation_degrades_more_with_severity(name: str) -> None:
    image = textured_image()
    psnrs = []
    for severity in PERTURBATIONS[name].severities:
        out = perturb(image, name, severity, index=3)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)
        assert np.array_equal(out, perturb(image, name, severity, index=3)), "not deterministic"
        psnrs.append(cv2.PSNR(image, out))
    assert all(a > b for a, b in zip(psnrs, psnrs[1:], strict=False)), f"{name}: PSNR {psnrs}"


def test_noise_is_seeded_per_image_index() -> None:
    image = textured_image()
    assert not np.array_equal(perturb(image, "noise", 10, index=0), perturb(image, "noise", 10, index=1))
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(image, "rotate", 10)
    with pytest.raises(ValueError, match="uint8"):
        perturb(image.astype(np.float32), "blur", 1)


def test_robustness_table_scores_every_severity() -> None:
    # A stand-in scorer: high-frequency energy reads as "fake". Fakes are textured, reals smooth.
    fakes = [textured_image(seed=i) for i in range(4)]
    reals = [cv2.GaussianBlur(textured_image(seed=10 + i), (0, 0), 2) for i in range(4)]
    labels = np.array([1] * 4 + [0] * 4)

    def predict_probs(batch: list[np.ndarray]) -> np.ndarray:
        energy = np.array([np.abs(cv2.Laplacian(img, cv2.CV_64F)).mean() for img in batch])
        return 1 / (1 + np.exp(-(energy - 20) / 5))

    table = robustness_table(predict_probs, fakes + reals, labels, threshold=0.5, batch_size=3)
    assert list(table) == list(PERTURBATIONS)
    for name, by_severity in table.items():
        assert list(by_severity) == [severity_key(s) for s in PERTURBATIONS[name].severities]
        for cell in by_severity.values():
            assert set(cell) == set(METRIC_KEYS) and cell["n_real"] == cell["n_fake"] == 4
    # Mild noise leaves the cue intact; strong noise makes every image look textured; blur removes it.
    assert table["noise"]["5"]["accuracy"] == 1.0
    assert table["noise"]["20"]["fraction_flagged_fake"] == 1.0
    assert table["blur"]["3"]["fraction_flagged_fake"] == 0.0


def test_dataset_names_and_training_marks(tmp_path: Path) -> None:
    assert dataset_name(tmp_path / "dfdc") == "dfdc"
    assert dataset_name(tmp_path / "dfdc" / "Test") == "dfdc"
    assert dataset_name(tmp_path / "stylegan-ffhq" / "") == "stylegan-ffhq"
    assert seen_in_training("dfdc", ["../shared/data/dfdc"])
    assert seen_in_training("dfdc", ["dfdc"])
    assert not seen_in_training("stylegan-ffhq", ["../shared/data/dfdc"])
    assert not seen_in_training("dfdc", [])


# ---------------------------------------------------------------------------- end to end

IMG_SIZE = 48  # the smallest even size at which seed-cnn's four conv+pool stages leave a 1x1 map


def _write_images(folder: Path, count: int, seed: int, textured: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = textured_image(64, seed=seed + i)
        if not textured:
            image = cv2.GaussianBlur(image, (0, 0), 3)
        Image.fromarray(image).save(folder / f"img_{i:02d}.jpg", quality=90)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from deepfake_detector.models import create_model, save_bundle
    from deepfake_detector.spec import ModelSpec

    torch.manual_seed(0)
    model = create_model("seed-cnn", img_size=IMG_SIZE).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, IMG_SIZE, IMG_SIZE)).shape == (2, 1)
    spec = ModelSpec(
        architecture="seed-cnn",
        img_size=IMG_SIZE,
        threshold=0.37,
        threshold_method="balanced_accuracy",
        temperature=1.7,
        name="tiny-test",
        trained_on=["/somewhere/kaggle-faces"],
    )
    out = tmp_path_factory.mktemp("model")
    save_bundle(model, spec, out)
    return out


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    kaggle = root / "kaggle-faces"  # Kaggle layout: only Test is evaluated by default
    _write_images(kaggle / "Test" / "Real", 6, seed=0, textured=False)
    _write_images(kaggle / "Test" / "Fake", 5, seed=100, textured=True)
    _write_images(kaggle / "Validation" / "Real", 3, seed=200, textured=False)
    (kaggle / "Test" / "Fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    only_real = root / "only-real"
    _write_images(only_real / "Real", 4, seed=300, textured=False)
    return kaggle, only_real


def test_evaluate_cli_end_to_end(tiny_model: Path, datasets: tuple[Path, Path], tmp_path: Path) -> None:
    from deepfake_detector.cli import app

    kaggle, only_real = datasets
    out = tmp_path / "eval"
    args = ["evaluate", str(tiny_model), str(kaggle), str(only_real), "--out", str(out), "--robustness"]
    result = CliRunner().invoke(app, [*args, "--batch-size", "4", "--workers", "2"])
    assert result.exit_code == 0, result.output

    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["kaggle-faces", "only-real"]
    both, single = metrics["kaggle-faces"], metrics["only-real"]
    for entry in (both, single):
        assert set(METRIC_KEYS) <= set(entry)
        assert entry["threshold"] == pytest.approx(0.37), "evaluation must use the stored threshold"
    assert (both["n_real"], both["n_fake"], both["n_unreadable"]) == (6, 5, 1)
    assert all(both[key] is not None for key in TWO_CLASS_METRICS)
    assert all(single[key] is None for key in TWO_CLASS_METRICS)
    assert (single["n_real"], single["n_fake"]) == (4, 0)
    for perturbation in PERTURBATIONS.values():
        cells = both["robustness"][perturbation.name]
        assert list(cells) == [severity_key(s) for s in perturbation.severities]
        assert cells[severity_key(perturbation.severities[0])]["n_real"] == 6

    detail = json.loads((out / "only-real.json").read_text())
    probs = np.array([row["prob_fake"] for row in detail["predictions"]])
    assert len(probs) == 4 and all(row["label"] == 0 for row in detail["predictions"])
    assert single["fraction_flagged_fake"] == pytest.approx(np.mean(probs >= 0.37))
    assert detail["seen_in_training"] is False

    kaggle_detail = json.loads((out / "kaggle-faces.json").read_text())
    assert kaggle_detail["seen_in_training"] is True
    assert [Path(row["path"]).name for row in kaggle_detail["unreadable"]] == ["broken.jpg"]
    assert all("/Test/" in row["path"] for row in kaggle_detail["predictions"])

    # Scores must be the model's: recompute one image's probability directly.
    import torch

    from deepfake_detector.data.crop import dataset_region
    from deepfake_detector.data.images import load_image
    from deepfake_detector.models import load_bundle
    from deepfake_detector.spec import preprocess_batch

    model, spec = load_bundle(tiny_model)
    row = kaggle_detail["predictions"][0]
    region, _ = dataset_region(load_image(row["path"]), spec.crop_spec, IMG_SIZE)  # as predict cuts it
    with torch.no_grad():
        logit = model(torch.from_numpy(preprocess_batch([region], spec)))
    assert row["prob_fake"] == pytest.approx(float(spec.probability(logit.numpy())[0]), abs=1e-5)

    html = (out / "report.html").read_text()
    assert "kaggle-faces" in html and "only-real" in html and "never seen" in html
    # This bundle has no list of its training images: the report and metrics.json say so.
    assert both["training_overlap"] == {
        "checked_by": "not checked",
        "n_excluded": 0,
        "examples": [],
        "split": "",
    }
    assert "this model has no list of its training images to check against" in html
    assert "data:image/png;base64," in html and "broken.jpg" in html
    assert (out / "plots" / "kaggle-faces_roc.png").stat().st_size > 0
    assert (out / "plots" / "kaggle-faces_robustness.png").stat().st_size > 0
    assert not (out / "plots" / "only-real_roc.png").exists()


def test_evaluate_cli_names_a_missing_dataset(tiny_model: Path, tmp_path: Path) -> None:
    from deepfake_detector.cli import app

    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(
        app, ["evaluate", str(tiny_model), str(missing), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # rich wraps long lines
    assert f"{missing}: no such folder" in message
    assert not (tmp_path / "o").exists()
