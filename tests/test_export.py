"""`deepfake-detector export`: a checked ONNX file with a dynamic batch axis, and int8 quantisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from inference_helpers import make_bundle, write_images
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.images import load_image
from deepfake_detector.inference import Detector
from deepfake_detector.spec import ModelSpec, preprocess_batch

runner = CliRunner()


def test_export_writes_a_checked_onnx_model_beside_model_json(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "run")
    result = runner.invoke(app, ["export", str(folder)])
    assert result.exit_code == 0, result.output
    assert "matches PyTorch" in result.stderr
    path = folder / "model.onnx"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    spec = ModelSpec.load(folder / "model.json")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["weights_sha256"] == spec.weights_sha256 and meta["architecture"] == "seed-cnn"

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name, inp.type) == ("input", "logit", "tensor(float)")
    assert inp.shape[1:] == [3, spec.img_size, spec.img_size] and not isinstance(inp.shape[0], int)
    for n in (1, 7):  # any batch size
        x = np.random.default_rng(n).normal(size=(n, 3, spec.img_size, spec.img_size)).astype(np.float32)
        assert session.run(None, {"input": x})[0].shape == (n, 1)


def test_export_to_a_chosen_file(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "run")
    target = tmp_path / "elsewhere" / "tiny.onnx"
    result = runner.invoke(app, ["export", str(folder / "model.safetensors"), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.is_file() and not (folder / "model.onnx").exists()


def test_int8_export_reports_its_accuracy_on_the_calibration_images(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "run")
    calib = tmp_path / "calib"
    write_images(calib / "Real", 12, size=(80, 80), seed=1)
    write_images(calib / "Fake", 12, size=(80, 80), seed=2)
    result = runner.invoke(app, ["export", str(folder), "--int8", "--calib", str(calib)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "int8 vs fp32 on 24 calibration images" in text and "accuracy fp32" in text
    int8 = folder / "model.int8.onnx"
    onnx.checker.check_model(str(int8))
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(int8)).graph.node)  # QDQ format

    fp32 = Detector.load(folder / "model.onnx")
    quantised = Detector.load(int8)
    images = [np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(8)]
    np.testing.assert_allclose(quantised.prob_fake(images), fp32.prob_fake(images), atol=0.05)

    (folder / "model.onnx").unlink()  # shipping only the int8 model: auto picks it up
    assert Detector.load(folder).engine.path.name == "model.int8.onnx"


def onnx_probabilities(path: Path, batch: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """sigmoid(logit / temperature) from a plain ONNX Runtime session on the file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": batch})[0].reshape(-1).astype(np.float64)
    return 1 / (1 + np.exp(-logits / spec.temperature))


def test_quantize_reports_agreement_and_labelled_accuracy(tmp_path: Path) -> None:
    from deepfake_detector.inference.export import export_onnx, quantize_int8

    folder = make_bundle(tmp_path / "run")
    calib = tmp_path / "calib"
    write_images(calib / "real", 10, seed=3)
    write_images(calib / "fake", 10, seed=4)
    fp32_path = export_onnx(folder)
    spec = ModelSpec.load(folder / "model.json")
    paths = sorted((calib / "real").glob("*.jpg")) + sorted((calib / "fake").glob("*.jpg"))
    labels = np.array([0] * 10 + [1] * 10)
    batch = preprocess_batch([load_image(p, size=spec.img_size) for p in paths], spec)
    prob32 = onnx_probabilities(fp32_path, batch, spec)
    spec.threshold = float(np.median(prob32))  # half the images on each side: agreement can be < 1
    report = quantize_int8(fp32_path, spec, calib)
    assert report.n_images == 20 and report.calibration == str(calib)

    prob8 = onnx_probabilities(report.path, batch, spec)
    fake32, fake8 = prob32 >= spec.threshold, prob8 >= spec.threshold
    assert report.decision_agreement == pytest.approx(np.mean(fake32 == fake8))
    assert report.max_abs_prob_diff == pytest.approx(np.max(np.abs(prob32 - prob8)), abs=1e-6)
    assert report.max_abs_prob_diff < 0.1
    assert report.accuracy_fp32 == pytest.approx(np.mean(fake32 == labels))
    assert report.accuracy_int8 == pytest.approx(np.mean(fake8 == labels))


def test_int8_calibrates_on_the_runs_recorded_data_by_default(tmp_path: Path) -> None:
    from deepfake_detector.inference.export import export_onnx, quantize_int8

    folder = make_bundle(tmp_path / "run")
    data = tmp_path / "data"
    write_images(data / "Real", 5, seed=5)
    write_images(data / "Fake", 5, seed=6)
    (folder / "data.json").write_text(json.dumps({"root": str(data)}))
    report = quantize_int8(export_onnx(folder), ModelSpec.load(folder / "model.json"))
    assert report.calibration == f"{data} (validation split)" and report.n_images == 10


def test_export_of_a_missing_model_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such model" in " ".join(result.stderr.split())


@pytest.mark.parametrize("fmt", ["tflite"])
def test_unknown_export_format_is_refused(tmp_path: Path, fmt: str) -> None:
    folder = make_bundle(tmp_path / "run")
    result = runner.invoke(app, ["export", str(folder), "--format", fmt])
    assert result.exit_code == 2 and f"'{fmt}' is not one of 'onnx'" in " ".join(
        result.stderr.replace("│", " ").split()
    )


def test_detector_export_matches_the_torch_engine(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "run")
    torch_detector = Detector.load(folder, engine="torch")
    written = torch_detector.export()
    assert written == folder / "model.onnx" and written.is_file()
    onnx_detector = Detector.load(folder)
    assert (torch_detector.engine_name, onnx_detector.engine_name) == ("torch", "onnx")
    paths = write_images(tmp_path / "images", 5, size=(96, 80), seed=7)
    images = [load_image(p) for p in paths]
    expected = torch_detector.prob_fake(images)
    assert np.ptp(expected) > 0  # different images, different scores: the comparison means something
    np.testing.assert_allclose(onnx_detector.prob_fake(images), expected, atol=1e-4, rtol=0)

    elsewhere = torch_detector.export(tmp_path / "out" / "tiny.onnx")
    assert elsewhere == tmp_path / "out" / "tiny.onnx"
    spec = torch_detector.spec
    crops = [load_image(p, size=spec.img_size) for p in paths]
    np.testing.assert_allclose(
        onnx_probabilities(elsewhere, preprocess_batch(crops, spec), spec),
        torch_detector.prob_fake(crops),
        atol=1e-4,
        rtol=0,
    )
    with pytest.raises(ValueError, match="unsupported export format 'tflite'"):
        torch_detector.export(format="tflite")
