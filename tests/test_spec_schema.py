"""model.json is validated on load (spec_schema.validate_spec_dict): one line per bad case below, each
refused with an error naming the file and the field; and model.onnx is tied to model.json by the
SHA-256 that `export` records, so another model's export is refused even with its metadata stripped.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from inference_helpers import make_bundle, write_images
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.spec import ModelSpec
from deepfake_detector.spec_schema import SpecError, validate_spec_dict

INF, NAN = math.inf, math.nan
BASE: dict[str, Any] = {"architecture": "seed-cnn", "img_size": 64}
PACKAGED = (
    Path(__file__).resolve().parents[1] / "src" / "deepfake_detector" / "weights" / "default" / "model.json"
)

# (field, bad value, words the error must hold after "field '<field>'"); "crop.x" sets crop={"x": value}.
BAD: list[tuple[str, Any, str]] = [
    ("temperature", INF, "must be a finite number > 0, got Infinity"),
    ("temperature", -INF, "finite number > 0, got -Infinity"),
    ("temperature", NAN, "finite number > 0, got NaN"),
    ("temperature", 0, "finite number > 0, got 0"),
    ("temperature", -1.5, "finite number > 0, got -1.5"),
    ("temperature", "abc", 'finite number > 0, got "abc"'),
    ("temperature", True, "finite number > 0, got true"),
    ("temperature", None, "finite number > 0, got null"),
    ("threshold", 1.5, "finite number in [0, 1], got 1.5"),
    ("threshold", -0.1, "in [0, 1], got -0.1"),
    ("threshold", NAN, "in [0, 1], got NaN"),
    ("threshold", "0.5", 'in [0, 1], got "0.5"'),
    ("mean", [0.5, 0.5], "list of 3 finite numbers, got [0.5, 0.5]"),
    ("mean", [0.5, 0.5, 0.5, 0.5], "list of 3 finite numbers"),
    ("mean", [NAN, 0.5, 0.5], "list of 3 finite numbers, got [NaN, 0.5, 0.5]"),
    ("mean", [0.5, 0.5, "x"], "list of 3 finite numbers"),
    ("mean", "abc", "list of 3 finite numbers"),
    ("std", [1.0, 0.0, 1.0], "list of 3 finite numbers > 0"),
    ("std", [1.0, -1.0, 1.0], "finite numbers > 0"),
    ("std", [INF, 1.0, 1.0], "finite numbers > 0"),
    ("std", [1.0, 1.0], "list of 3"),
    ("img_size", "128", 'integer in [8, 1024] (a JSON number, not a string), got "128"'),
    ("img_size", 0, "integer in [8, 1024]"),
    ("img_size", 4, "integer in [8, 1024]"),
    ("img_size", 32.5, "integer in [8, 1024]"),
    ("img_size", 100_000, "integer in [8, 1024]"),
    ("img_size", True, "integer in [8, 1024]"),
    ("img_size", None, "integer in [8, 1024]"),
    ("class_names", ["real"], "list of 2 non-empty strings"),
    ("class_names", ["real", "fake", "other"], "list of 2"),
    ("class_names", [0, 1], "list of 2 non-empty strings"),
    ("class_names", ["real", ""], "non-empty strings"),
    ("class_names", "real,fake", "list of 2"),
    ("trained_on", "dfdc", 'list of strings, got "dfdc"'),
    ("trained_on", [1], "list of strings"),
    ("weights_sha256", "xyz", "SHA-256 as 64 lower-case hex digits"),
    ("weights_sha256", "A" * 64, "lower-case hex"),
    ("weights_sha256", 123, "SHA-256"),
    ("onnx_sha256", "0" * 63, "SHA-256"),
    ("onnx_sha256", None, "SHA-256"),
    ("metrics", [], "must be a JSON object"),
    ("metrics", "good", "JSON object"),
    ("face_margin", -0.1, "finite number in [0, 2]"),
    ("face_margin", 3, "in [0, 2]"),
    ("face_margin", NAN, "in [0, 2]"),
    ("face_margin", "0.3", "in [0, 2]"),
    ("architecture", "", "non-empty string"),
    ("architecture", 5, "non-empty string"),
    ("name", 5, "must be a string"),
    ("version", None, "must be a string"),
    ("threshold_method", [], "must be a string"),
    ("format", "1", "integer in [1, 1]"),
    ("format", 0, "integer in [1, 1]"),
    ("format", 2, "newer than this version of deepfake-detector reads (1)"),
    ("crop", "tight", "must be a JSON object (or null)"),
    ("crop", [], "JSON object"),
    ("crop.detector", "mtcnn", "one of 'retinaface', 'none', got \"mtcnn\""),
    ("crop.margin", -1, "finite number in [0, 2]"),
    ("crop.margin", 2.5, "in [0, 2]"),
    ("crop.margin", INF, "in [0, 2], got Infinity"),
    ("crop.square", "yes", 'true or false, got "yes"'),
    ("crop.align", 1, "true or false, got 1"),
    ("crop.fill", "wrap", "one of 'replicate', 'constant', 'shift'"),
    ("crop.crop_min_fill", 0, "finite number in (0, 1], got 0"),
    ("crop.crop_min_fill", 1.5, "in (0, 1]"),
    ("crop.crop_min_fill", "0.6", "in (0, 1]"),
    ("crop.crops", "some", "one of 'recut', 'whole'"),
]


def with_field(field: str, value: Any) -> dict[str, Any]:
    if field.startswith("crop."):
        return {**BASE, "crop": {field.split(".", 1)[1]: value}}
    return {**BASE, field: value}


@pytest.mark.parametrize(("field", "value", "words"), BAD, ids=[f"{f}={v!r}"[:60] for f, v, _ in BAD])
def test_a_bad_field_is_refused_naming_the_file_and_the_field(field: str, value: Any, words: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_spec_dict(with_field(field, value), "runs/x/model.json")
    message = str(info.value)
    assert message.startswith(f"runs/x/model.json: field '{field}' "), message
    assert words in message, message
    assert "\n" not in message


def test_the_issue_example_reads_exactly_so() -> None:
    with pytest.raises(SpecError) as info:
        validate_spec_dict({**BASE, "temperature": INF}, "model.json")
    assert str(info.value) == "model.json: field 'temperature' must be a finite number > 0, got Infinity"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"img_size": 64}, "missing required field(s) 'architecture'"),
        ({}, "missing required field(s) 'architecture', 'img_size'"),
        (
            {**BASE, "crop": {"margin": 0.2, "zoom": 2}},
            "field 'crop' has unknown key(s) 'zoom'; known: detector",
        ),
        ([1, 2], "must hold a JSON object, got list"),
    ],
)
def test_a_spec_missing_fields_or_not_an_object_is_refused(data: Any, words: str) -> None:
    with pytest.raises(SpecError, match="^model.json: ") as info:
        validate_spec_dict(data, "model.json")
    assert words in str(info.value)


GOOD: list[dict[str, Any]] = [
    BASE,
    {**BASE, "img_size": 8, "threshold": 0, "temperature": 2, "face_margin": 0},
    {**BASE, "img_size": 1024, "threshold": 1.0, "face_margin": 2.0, "format": 1},
    {**BASE, "crop": None, "onnx_sha256": "", "weights_sha256": "ab" * 32},
    {**BASE, "crop": {}},
    {
        **BASE,
        "crop": {
            "detector": "none",
            "margin": 0.0,
            "square": False,
            "align": True,
            "fill": "shift",
            "crop_min_fill": 1.0,
            "crops": "whole",
        },
    },  # fmt: skip
    {**BASE, "a_field_from_a_newer_writer": [1, 2, 3]},  # unknown top-level fields are left alone
    {**BASE, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "class_names": ("real", "fake")},
    {**BASE, "metrics": {"val": {"roc_auc": NAN}}},  # a metric may be NaN (one class in a split)
]


@pytest.mark.parametrize("data", GOOD)
def test_valid_specs_pass(data: dict[str, Any]) -> None:
    validate_spec_dict(data, "model.json")


def test_every_spec_this_code_writes_passes(tmp_path: Path) -> None:
    if PACKAGED.is_file():
        validate_spec_dict(json.loads(PACKAGED.read_text()), str(PACKAGED))
    spec = ModelSpec(architecture="seed-cnn", img_size=64, name="x")
    validate_spec_dict(json.loads(spec.to_json()), "model.json")


# --- on load: the model.json of a real bundle ------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle"), img_size=64)


def broken_copy(bundle: Path, folder: Path, **fields: Any) -> Path:
    """A copy of the bundle whose model.json has `fields` set (written as JSON, Infinity and NaN too)."""
    folder.mkdir()
    for name in ("model.safetensors", "model.json"):
        (folder / name).write_bytes((bundle / name).read_bytes())
    data = json.loads((folder / "model.json").read_text())
    data.update(fields)
    (folder / "model.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"temperature": INF}, "field 'temperature' must be a finite number > 0, got Infinity"),
        ({"temperature": "abc"}, "field 'temperature'"),
        ({"mean": [0.5, 0.5]}, "field 'mean' must be a list of 3 finite numbers"),
        ({"img_size": "128"}, "field 'img_size'"),
        ({"img_size": 0}, "field 'img_size'"),
    ],
)
def test_predict_refuses_a_bad_model_json_in_one_line(bundle: Path, tmp_path: Path, fields, words) -> None:
    model = broken_copy(bundle, tmp_path / "model", **fields)
    with pytest.raises(ValueError, match=f"^{model / 'model.json'}: ") as info:
        ModelSpec.load(model / "model.json")
    assert words in str(info.value)
    images = write_images(tmp_path / "in", 2, size=(64, 64))
    result = CliRunner().invoke(app, ["predict", *map(str, images), "--model", str(model), "--format", "csv"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert words in result.output and str(model / "model.json") in result.output
    assert "Traceback" not in result.output and not result.stdout.strip()  # nothing scored


def test_the_service_does_not_start_on_a_bad_model_json(bundle: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from deepfake_detector.service import create_app

    model = broken_copy(bundle, tmp_path / "model", mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="field 'mean'"), TestClient(create_app(str(model))):
        pass  # never ready: the lifespan start-up refuses the model


# --- model.onnx tied to model.json -----------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_records_the_onnx_hash_and_a_swapped_onnx_is_refused(tmp_path: Path) -> None:
    import onnx

    from deepfake_detector.inference.detector import Detector
    from deepfake_detector.inference.engines import ModelMismatch
    from deepfake_detector.inference.export import export_onnx

    ours, other = make_bundle(tmp_path / "ours", seed=0), make_bundle(tmp_path / "other", seed=1)
    before = json.loads((ours / "model.json").read_text())
    onnx_path = export_onnx(ours)
    export_onnx(other)
    after = json.loads((ours / "model.json").read_text())
    assert after.pop("onnx_sha256") == sha256(onnx_path)
    assert after == {k: v for k, v in before.items() if k != "onnx_sha256"}  # nothing else changed
    assert Detector.load(ours, engine="onnx").engine_name == "onnx"

    proto = onnx.load(str(other / "model.onnx"))
    del proto.metadata_props[:]  # no weights_sha256 left in it to give the swap away
    onnx.save(proto, str(onnx_path))
    with pytest.raises(ModelMismatch, match="not the ONNX export model.json records") as info:
        Detector.load(ours, engine="onnx")
    assert str(onnx_path) in str(info.value) and "re-run `deepfake-detector export`" in str(info.value)
    with pytest.warns(UserWarning, match="using PyTorch instead"):
        assert Detector.load(ours).engine_name == "torch"  # auto: the weights, not the stray file

    images = write_images(tmp_path / "in", 1, size=(64, 64))
    result = CliRunner().invoke(app, ["predict", str(images[0]), "--model", str(ours), "--engine", "onnx"])
    assert result.exit_code == 2 and "not the ONNX export model.json records" in result.output, result.output


def test_an_export_written_elsewhere_leaves_model_json_alone(tmp_path: Path) -> None:
    from deepfake_detector.inference.export import export_onnx

    ours = make_bundle(tmp_path / "ours")
    before = (ours / "model.json").read_bytes()
    export_onnx(ours, tmp_path / "elsewhere" / "copy.onnx")
    assert (ours / "model.json").read_bytes() == before


def test_int8_export_is_recorded_too_and_loads(tmp_path: Path) -> None:
    from deepfake_detector.inference.detector import Detector
    from deepfake_detector.inference.export import export_onnx, quantize_int8

    ours = make_bundle(tmp_path / "ours")
    fp32 = export_onnx(ours)
    calibration = write_images(tmp_path / "calib", 8, size=(64, 64))
    report = quantize_int8(fp32, ModelSpec.load(ours / "model.json"), calibration, model_folder=ours)
    recorded = json.loads((ours / "model.json").read_text())
    assert recorded["onnx_sha256"] == sha256(fp32) and recorded["int8_onnx_sha256"] == sha256(report.path)
    assert Detector.load(report.path, engine="onnx").engine_name == "onnx"  # the int8 file is vouched for
    assert Detector.load(ours, engine="onnx").engine_name == "onnx"  # and model.onnx still is
