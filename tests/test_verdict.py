"""One honest verdict: fake / real / uncertain by one rule, with the same fields and the same JSON Schema
in Python, in every CLI format and in the REST API, and never a label its own probability contradicts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from inference_helpers import assert_verdict_consistent
from PIL import Image
from service_helpers import dfdc_image
from typer.testing import CliRunner

from deepfake_detector import Detector
from deepfake_detector.cli import app
from deepfake_detector.inference.results import ROW_FIELDS
from deepfake_detector.schemas import load_schema
from deepfake_detector.service import create_app
from deepfake_detector.service.schemas import BatchOut, PredictionOut, VerdictOut
from deepfake_detector.verdict import DecisionRule

runner = CliRunner()
PREDICTION = load_schema("prediction")
CSV_ROW = load_schema("prediction-row")


def validate(row: dict, schema: dict) -> None:
    jsonschema.Draft202012Validator(schema).validate(row)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Real dfdc faces of both classes, a photo without a face and a file that is not an image."""
    folder = tmp_path_factory.mktemp("verdict-inputs")
    wall = folder / "wall.png"
    Image.fromarray(np.full((400, 900, 3), 200, np.uint8)).save(wall)
    broken = folder / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    faces = [dfdc_image(cls, i) for cls in ("Real", "Fake") for i in range(4)]
    return [str(p) for p in (*faces, wall, broken)]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load("fast")


@given(
    threshold=st.floats(0.0, 1.0),
    band=st.floats(0.0, 0.49),
    prob=st.floats(0.0, 1.0),
)
def test_the_rule_never_gives_a_label_its_probability_contradicts(threshold: float, band: float, prob: float):
    rule = DecisionRule(threshold, band)
    label = rule.label(prob)
    confidence = rule.confidence(prob, label)
    if label == "fake":
        assert prob > 0.5 and prob >= threshold + band and confidence == prob
    elif label == "real":
        assert prob < 0.5 and prob < threshold - band and confidence == 1 - prob
    else:
        assert label == "uncertain" and confidence is None
    assert confidence is None or confidence > 0.5


def test_the_rule_has_a_band_and_refuses_nonsense() -> None:
    rule = DecisionRule(0.548, 0.05)  # the threshold of the example
    assert rule.label(0.515) == "uncertain"  # was "real" with confidence 0.485
    assert (rule.label(0.60), rule.label(0.50), rule.label(0.49)) == ("fake", "uncertain", "real")
    assert DecisionRule(0.3, 0.0).label(0.4) == "uncertain"  # above a low threshold, yet below 0.5
    for threshold, band in ((1.5, 0.05), (0.5, 0.5), (float("nan"), 0.0), (0.5, -0.1)):
        with pytest.raises(ValueError):
            DecisionRule(threshold, band)


def test_python_predictions_follow_the_schema_and_the_rule(detector: Detector, inputs: list[str]) -> None:
    rows = detector.predict(inputs)
    assert {r.label for r in rows} <= {"fake", "real", "uncertain", ""}
    assert [r.path for r in rows] == inputs
    for row in rows:
        data = row.to_dict()
        assert list(data) == list(ROW_FIELDS)
        validate(data, PREDICTION)
        assert_verdict_consistent(data)
        assert_verdict_consistent(row.to_row())
    assert rows[-2].note == "no face found" and rows[-2].label == ""
    assert rows[-1].error and rows[-1].label == ""
    assert sum(r.label == "fake" for r in rows[4:8]) >= 2 and sum(r.label == "real" for r in rows[:4]) >= 2


def test_a_threshold_override_changes_labels_not_probabilities(detector: Detector, inputs: list[str]) -> None:
    faces = inputs[:8]
    base = detector.predict(faces)
    strict = detector.with_rule(threshold=0.95, uncertain_band=0.0).predict(faces)
    assert [r.prob_fake for r in strict] == [r.prob_fake for r in base]
    assert all(r.threshold == 0.95 and r.uncertain_band == 0.0 for r in strict)
    for row in strict:
        assert row.label == (
            "fake" if row.prob_fake >= 0.95 else "real" if row.prob_fake < 0.5 else "uncertain"
        )
    assert detector.spec.threshold != 0.95  # the loaded detector itself is unchanged
    with pytest.raises(ValueError, match="threshold"):
        detector.with_rule(threshold=1.2)


def test_every_cli_format_has_the_same_fields_and_follows_the_schema(
    inputs: list[str], tmp_path: Path
) -> None:
    common = ["predict", *inputs, "--model", "fast"]
    as_json = runner.invoke(app, [*common, "--format", "json"])
    assert as_json.exit_code == 1, as_json.output  # one unreadable file
    doc = json.loads(as_json.stdout)
    assert doc["uncertain_band"] == 0.05 and "uncertain between" in doc["rule"]
    jsonl = runner.invoke(app, [*common, "--format", "jsonl"])
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    as_csv = runner.invoke(app, [*common, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert doc["predictions"] == lines and len(rows) == len(inputs)
    for data, row in zip(lines, rows, strict=True):
        assert list(data) == list(row) == list(ROW_FIELDS)
        validate(data, PREDICTION)
        validate(row, CSV_ROW)
        assert_verdict_consistent(data)
        assert_verdict_consistent(row)
        assert row["label"] == data["label"]

    strict = runner.invoke(app, [*common[:2], "--model", "fast", "--format", "jsonl", "--threshold", "0.99"])
    assert all(json.loads(line)["label"] in ("real", "uncertain") for line in strict.stdout.splitlines())
    bad = runner.invoke(app, [*common[:2], "--model", "fast", "--threshold", "1.5"])
    assert bad.exit_code == 2 and "--threshold" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app("fast", timeout_s=600)) as test_client:
        yield test_client


def test_rest_answers_use_the_same_fields_and_schema(client: TestClient, inputs: list[str]) -> None:
    assert set(VerdictOut.model_fields) == set(PREDICTION["required"]) == set(ROW_FIELDS)
    assert set(VerdictOut.model_fields) <= set(PredictionOut.model_fields)
    for path in inputs[:8]:
        with open(path, "rb") as fh:
            response = client.post("/v1/predict", files={"file": (Path(path).name, fh, "image/jpeg")})
        assert response.status_code == 200, response.text
        body = response.json()
        validate(body, PREDICTION)
        validate(body, PredictionOut.model_json_schema())  # and the REST API's own (OpenAPI) schema
        assert_verdict_consistent(body)
        assert body["path"] == Path(path).name and {"image", "timing_ms"} <= set(body)
    with open(inputs[0], "rb") as a, open(inputs[-1], "rb") as b:
        files = [("files", ("a.jpg", a, "image/jpeg")), ("files", ("broken.jpg", b, "image/jpeg"))]
        batch = client.post("/v1/predict/batch", files=files).json()
    validate(batch, BatchOut.model_json_schema())
    good, bad = batch["results"]
    assert (good["path"], bad["path"], bad["status"]) == ("a.jpg", "broken.jpg", 422)
    validate(good["result"], PREDICTION)
    model = client.get("/v1/model").json()
    assert model["uncertain_band"] == 0.05 and "uncertain between" in model["rule"]


def test_the_service_can_decide_with_another_threshold(inputs: list[str]) -> None:
    with TestClient(create_app("fast", threshold=0.99, uncertain_band=0.0, timeout_s=600)) as client:
        with open(inputs[5], "rb") as fh:
            body = client.post("/v1/predict", files={"file": ("f.jpg", fh, "image/jpeg")}).json()
        assert body["threshold"] == 0.99 and body["label"] in ("real", "uncertain")
        assert client.get("/v1/model").json()["threshold_method"] == "user"


def test_a_request_can_ask_for_its_own_threshold(client: TestClient, inputs: list[str]) -> None:
    with open(inputs[5], "rb") as fh:
        data = fh.read()
    base = client.post("/v1/predict", files={"file": ("f.jpg", data, "image/jpeg")}).json()
    strict = client.post(
        "/v1/predict?threshold=0.99&uncertain_band=0", files={"file": ("f.jpg", data, "image/jpeg")}
    ).json()
    assert strict["prob_fake"] == base["prob_fake"] and (strict["threshold"], strict["uncertain_band"]) == (
        0.99,
        0.0,
    )
    assert strict["label"] in ("real", "uncertain") and strict["faces"][0]["label"] == strict["label"]
    assert_verdict_consistent(strict)
    batch = client.post(
        "/v1/predict/batch?threshold=0.01", files=[("files", ("f.jpg", data, "image/jpeg"))]
    ).json()
    assert batch["results"][0]["result"]["threshold"] == 0.01
    assert batch["results"][0]["result"]["label"] in ("fake", "uncertain")
    for query in ("threshold=1.5", "uncertain_band=0.5", "threshold=abc"):
        bad = client.post(f"/v1/predict?{query}", files={"file": ("f.jpg", data, "image/jpeg")})
        assert bad.status_code == 422, (query, bad.text)
    assert client.get("/v1/model").json()["threshold"] != 0.99  # the service's own rule is unchanged
