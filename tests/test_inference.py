"""Detector, engines and batched decoding: PyTorch and ONNX Runtime agree, bad files become error rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import TINY_SIZE, make_bundle, shared_images, write_images
from sklearn.metrics import roc_auc_score

from deepfake_detector.data.images import UnreadableImage, load_image
from deepfake_detector.inference import Detector, Prediction
from deepfake_detector.inference.batching import iter_decoded
from deepfake_detector.inference.engines import ModelMismatch
from deepfake_detector.inference.results import FaceResult
from deepfake_detector.locate import ModelNotFound
from deepfake_detector.spec import ModelSpec


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_detector.inference.export import export_onnx

    folder = make_bundle(tmp_path_factory.mktemp("bundle"))
    export_onnx(folder)
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    return write_images(folder, 6, size=(96, 80)) + shared_images("dfdc", "Test", "Fake", 6)


def _corrupt_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = write_images(folder, 1, size=(64, 64), seed=5)[0]
    truncated = folder / "truncated.jpg"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = folder / "notes.jpg"
    text.write_text("this is not an image\n")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    return {"truncated": truncated, "text": text, "empty": empty, "missing": folder / "missing.jpg"}


def test_iter_decoded_keeps_input_order_and_yields_errors(tmp_path: Path) -> None:
    good = write_images(tmp_path / "good", 5, size=(50, 40))
    bad = _corrupt_files(tmp_path / "bad")
    paths = [good[0], bad["truncated"], good[1], bad["text"], good[2], bad["missing"], good[3], good[4]]
    results = list(iter_decoded(paths, size=32, workers=2))
    assert [i for i, _ in results] == list(range(len(paths)))
    for (_, result), path in zip(results, paths, strict=True):
        if path in good:
            assert isinstance(result, np.ndarray) and result.shape == (32, 32, 3)
            np.testing.assert_array_equal(result, load_image(path, size=32))
        else:
            assert isinstance(result, UnreadableImage)
            assert result.path == str(path) and result.reason


def test_iter_decoded_reads_ahead_only_a_bounded_number(tmp_path: Path) -> None:
    path = write_images(tmp_path, 1, size=(20, 20))[0]
    consumed = 0

    def endless():
        nonlocal consumed
        while True:
            consumed += 1
            yield path

    stream = iter_decoded(endless(), size=16, workers=2)
    for _ in range(3):
        next(stream)
    stream.close()
    assert consumed < 100  # an unbounded pool would have pulled the endless input until memory ran out


def test_torch_and_onnx_give_the_same_logits_and_decisions(exported: Path, images: list[Path]) -> None:
    torch_detector = Detector.load(exported, engine="torch")
    onnx_detector = Detector.load(exported, engine="onnx")
    assert (torch_detector.engine_name, onnx_detector.engine_name) == ("torch", "onnx")
    arrays = [load_image(p) for p in images]
    torch_logits = torch_detector.predict_logits(arrays)
    onnx_logits = onnx_detector.predict_logits(arrays)
    assert torch_logits.shape == (len(images),)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=0)
    assert np.ptp(torch_logits) > 0  # different images, different scores

    # Threshold between the two middle probabilities: both engines must split the images the same way.
    probs = np.sort(torch_detector.prob_fake(arrays))
    middle = len(probs) // 2
    for detector in (torch_detector, onnx_detector):
        detector.spec.threshold = float((probs[middle - 1] + probs[middle]) / 2)
        detector.spec.uncertain_band = 0.0
    torch_rows = torch_detector.predict(images, faces="never", batch_size=4)
    onnx_rows = onnx_detector.predict(images, faces="never", batch_size=5)
    assert [r.label for r in torch_rows] == [r.label for r in onnx_rows]
    assert {r.label for r in torch_rows} <= {"fake", "real", "uncertain"} and len(
        {r.label for r in torch_rows}
    ) > 1
    np.testing.assert_allclose([r.prob_fake for r in onnx_rows], [r.prob_fake for r in torch_rows], atol=1e-5)


def test_auto_engine_prefers_an_exported_model(exported: Path, tmp_path: Path) -> None:
    assert Detector.load(exported).engine_name == "onnx"
    assert Detector.load(exported / "model.onnx").engine_name == "onnx"
    plain = make_bundle(tmp_path / "plain")
    assert Detector.load(plain).engine_name == "torch"
    with pytest.raises(ModelNotFound, match="model.onnx"):
        Detector.load(plain, engine="onnx")


def test_export_left_behind_by_retraining_is_not_used(tmp_path: Path) -> None:
    from deepfake_detector.inference.export import export_onnx

    folder = make_bundle(tmp_path / "run", seed=0)
    export_onnx(folder)
    make_bundle(folder, seed=1)  # new weights, old model.onnx
    with pytest.raises(ModelMismatch, match="re-run `deepfake-detector export`"):
        Detector.load(folder, engine="onnx")
    with pytest.warns(UserWarning, match="using PyTorch instead"):
        assert Detector.load(folder).engine_name == "torch"


def test_predict_gives_error_rows_for_bad_files_and_scores_the_rest(exported: Path, tmp_path: Path) -> None:
    good = write_images(tmp_path / "good", 3, size=(64, 64), seed=3)
    bad = _corrupt_files(tmp_path / "bad")
    inputs = [good[0], bad["truncated"], good[1], bad["text"], bad["empty"], bad["missing"], good[2]]
    detector = Detector.load(exported)
    rows = detector.predict(inputs, faces="never", batch_size=2)
    assert [r.path for r in rows] == [str(p) for p in inputs]
    reasons = {Path(r.path).name: r.error for r in rows if r.error}
    assert "truncated" in reasons["truncated.jpg"].lower()
    assert "not an image" in reasons["notes.jpg"]
    assert "empty file" in reasons["empty.png"]
    assert "file not found" in reasons["missing.jpg"]
    expected = detector.prob_fake([load_image(p) for p in good])
    scored = [r for r in rows if not r.error]
    np.testing.assert_allclose([r.prob_fake for r in scored], expected, atol=1e-6)
    for row in scored:
        assert row.label == detector.spec.rule.label(row.prob_fake)
        assert len(row.faces) == 1 and row.faces[0].box == (0, 0, 64, 64)
    for row in rows:
        if row.error:
            assert row.label == "" and row.prob_fake is None and row.faces == []


def test_auto_faces_scores_a_face_crop_exactly_like_the_whole_image(
    exported: Path, images: list[Path]
) -> None:
    detector = Detector.load(exported)
    auto = detector.predict(images, faces="auto")
    never = detector.predict(images, faces="never")
    assert [r.prob_fake for r in auto] == [r.prob_fake for r in never]
    assert all(
        r.note.endswith("scored whole") or r.note.startswith("no face found; scored whole") for r in auto
    )


def test_probability_uses_the_models_temperature_and_threshold(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "calibrated"
    shutil.copytree(exported, folder)
    spec = ModelSpec.load(folder / "model.json")
    spec.temperature, spec.threshold = 2.5, 0.3
    spec.save(folder / "model.json")
    detector = Detector.load(folder)
    arrays = [np.full((TINY_SIZE, TINY_SIZE, 3), v, np.uint8) for v in (0, 90, 255)]
    logits = detector.predict_logits(arrays)
    np.testing.assert_allclose(detector.prob_fake(arrays), 1 / (1 + np.exp(-logits / 2.5)), rtol=1e-6)
    assert all(r.threshold == 0.3 for r in detector.predict(write_images(tmp_path / "i", 2), faces="never"))


def test_prediction_rows_report_confidence_of_the_label() -> None:
    face = FaceResult(box=(1, 2, 30, 40), prob_fake=0.2, label="real")
    real = Prediction("a.jpg", "real", 0.2, 0.5, [face])
    assert real.confidence == pytest.approx(0.8)
    row = real.to_row()
    assert row["face_count"] == 1 and row["error"] == "" and row["label"] == "real"
    assert json.loads(row["faces"]) == [
        {"box": [1, 2, 30, 40], "prob_fake": 0.2, "label": "real", "heatmap": None}
    ]
    fake = Prediction("b.jpg", "fake", 0.9, 0.5, [face])
    assert fake.confidence == pytest.approx(0.9)
    failed = Prediction("c.jpg", "", None, 0.5, error="file not found")
    assert failed.to_row()["prob_fake"] == "" and failed.to_dict()["confidence"] is None


SLIM_SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` on this path now fails
from deepfake_detector.inference import Detector
detector = Detector.load(sys.argv[1])
rows = detector.predict(sys.argv[2:], faces="never")
assert "torch" not in [m for m, mod in sys.modules.items() if mod is not None], "torch was imported"
print(detector.engine_name, *[f"{r.prob_fake:.6f}" for r in rows])
"""


def test_exported_model_predicts_without_torch(exported: Path, images: list[Path]) -> None:
    paths = [str(p) for p in images[:4]]
    done = subprocess.run(
        [sys.executable, "-c", SLIM_SCRIPT, str(exported), *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    engine, *probs = done.stdout.split()
    assert engine == "onnx"
    with warnings.catch_warnings():
        expected = Detector.load(exported, engine="torch").predict(paths, faces="never")
    np.testing.assert_allclose([float(p) for p in probs], [r.prob_fake for r in expected], atol=1e-5)


def test_detector_evaluates_a_labelled_folder(exported: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_images(data / "Real", 6, seed=1)
    write_images(data / "Fake", 6, seed=2)
    detector = Detector.load(exported)
    summary = detector.evaluate([data], tmp_path / "eval")
    (metrics,) = summary.values()
    assert metrics["n_real"] == 6 and metrics["n_fake"] == 6
    # The same numbers from each image scored whole (80x80 crops) and the labels of its folder.
    paths = sorted((data / "Real").glob("*.jpg")) + sorted((data / "Fake").glob("*.jpg"))
    labels = np.array([0] * 6 + [1] * 6)
    probs = detector.prob_fake([load_image(p, size=TINY_SIZE) for p in paths])
    assert metrics["accuracy"] == pytest.approx(np.mean((probs >= detector.spec.threshold) == labels))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_device_choice_is_checked_and_auto_falls_back_to_cpu(exported: Path) -> None:
    import torch

    from deepfake_detector.inference.engines import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--device must be"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="ONNX engine here is CPU-only"):
        Detector.load(exported, engine="onnx", device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            Detector.load(exported, device="cuda")
        # auto on a machine without a GPU keeps the usual engine choice (here: the exported model).
        assert Detector.load(exported, device="auto").engine_name == "onnx"
