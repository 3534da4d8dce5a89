"""HTTP API (FastAPI TestClient): every endpoint and error code, CLI-equal probabilities, heatmaps, logs."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from inference_helpers import assert_verdict_consistent
from PIL import Image
from service_helpers import dfdc_image, jpeg_bytes, model_ref, png_bytes

from deepfake_detector.inference import Detector
from deepfake_detector.service import create_app
from deepfake_detector.service.logging import ACCESS_LOGGER, JsonFormatter
from deepfake_detector.service.uploads import clean_filename

UPLOAD_LIMIT_MB = 1.0
PIXEL_LIMIT = 4_000_000


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return model_ref(tmp_path_factory.mktemp("service-model"))


@pytest.fixture(scope="module")
def client(model: str) -> Iterator[TestClient]:
    app = create_app(model, max_upload_mb=UPLOAD_LIMIT_MB, max_pixels=PIXEL_LIMIT, timeout_s=600)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def detector(model: str) -> Detector:
    return Detector.load(model)


def upload(client: TestClient, path: Path, query: str = "") -> dict:
    with open(path, "rb") as fh:
        response = client.post(f"/v1/predict{query}", files={"file": (path.name, fh, "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()


# --- health
def test_healthz_and_readyz_answer_once_the_model_is_loaded(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and ready.json()["in_flight"] == 0


def test_before_start_up_the_service_is_live_but_not_ready(model: str) -> None:
    app = create_app(model)  # no `with`: the lifespan (model loading) has not run
    raw = TestClient(app)
    assert raw.get("/healthz").status_code == 200
    assert raw.get("/readyz").status_code == 503
    response = raw.post("/v1/predict", content=png_bytes(32, 32), headers={"content-type": "image/png"})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["detail"] == "model not loaded yet"


def test_model_endpoint_describes_the_loaded_model(client: TestClient, detector: Detector) -> None:
    info = client.get("/v1/model").json()
    spec = detector.spec
    assert info["name"] == spec.name and info["version"] == spec.version
    assert info["architecture"] == spec.architecture
    assert info["threshold"] == pytest.approx(spec.threshold, abs=1e-6)
    assert info["temperature"] == pytest.approx(spec.temperature, abs=1e-6)
    assert info["input_size"] == spec.img_size
    assert info["data_hash"] == spec.data_hash and info["metrics"] == json.loads(json.dumps(spec.metrics))
    assert info["limits"]["max_upload_mb"] == UPLOAD_LIMIT_MB and info["limits"]["max_pixels"] == PIXEL_LIMIT


# --- predict
@pytest.mark.parametrize("cls", ["Real", "Fake"])
def test_predict_gives_the_same_probability_as_the_cli(
    client: TestClient, detector: Detector, cls: str
) -> None:
    path = dfdc_image(cls)
    expected = detector.predict([path])[0]  # what `deepfake-detector predict` prints for the file
    multipart = upload(client, path)
    raw = client.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "image/jpeg"}).json()
    for body in (multipart, raw):
        assert body["prob_fake"] == pytest.approx(expected.prob_fake, abs=1e-5)
        assert body["label"] == expected.label
        assert body["threshold"] == pytest.approx(expected.threshold, abs=1e-6)
        assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-5)
        assert [face["box"] for face in body["faces"]] == [list(face.box) for face in expected.faces]
    assert multipart["path"] == path.name and raw["path"] == "upload"


def test_prediction_carries_faces_label_threshold_and_timing(client: TestClient) -> None:
    path = dfdc_image("Fake", 1)  # a real face: the face policy looks for one
    with open(path, "rb") as fh:
        response = client.post(
            "/v1/predict", files={"file": (path.name, fh, "image/jpeg")}, headers={"X-Request-ID": "trace-42"}
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42"
    body = response.json()
    assert body["image"] == {"width": 224, "height": 224, "format": "JPEG"}
    assert body["note"].startswith("face crop (its face spans ")  # decided by looking: one face fills it
    (face,) = body["faces"]
    x1, y1, x2, y2 = face["box"]  # the detected face, which fills most of the crop
    assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 224 and min(x2 - x1, y2 - y1) >= 0.6 * 224
    assert face["heatmap_png"] is None
    assert_verdict_consistent(body)
    assert body["label"] == face["label"] and body["prob_fake"] == face["prob_fake"]
    timing = body["timing_ms"]
    assert {"decode", "inference", "queue", "total"} <= set(timing)
    assert timing["total"] >= timing["decode"] + timing["inference"]


def test_faces_never_scores_the_whole_image_like_the_cli(client: TestClient, detector: Detector) -> None:
    path = dfdc_image("Real", 1)
    expected = detector.predict([path], faces="never")[0]
    body = upload(client, path, "?faces=never")
    assert body["note"] == "whole image"
    assert body["prob_fake"] == pytest.approx(expected.prob_fake, abs=1e-5)
    assert client.post("/v1/predict?faces=sometimes", content=b"x").status_code == 422


def test_faces_are_found_and_boxed_in_a_larger_photo(
    client: TestClient, detector: Detector, tmp_path
) -> None:
    # Two face crops side by side on a grey canvas: a photo (not a crop) in which detection must run.
    canvas = Image.new("RGB", (900, 500), (128, 128, 128))
    for i, cls in enumerate(("Real", "Fake")):
        canvas.paste(Image.open(dfdc_image(cls, 2)), (100 + 450 * i, 130))
    path = tmp_path / "two_faces.jpg"
    canvas.save(path, quality=95)
    expected = detector.predict([path])[0]
    body = upload(client, path)
    assert body["image"]["width"] == 900 and body["image"]["height"] == 500
    assert [face["box"] for face in body["faces"]] == [list(face.box) for face in expected.faces]
    assert body["note"] == expected.note
    if body["faces"]:
        assert body["prob_fake"] == pytest.approx(max(f["prob_fake"] for f in body["faces"]))
        assert body["prob_fake"] == pytest.approx(expected.prob_fake, abs=1e-5)


def test_heatmap_is_a_valid_png_per_face(client: TestClient) -> None:
    response = client.post(
        "/v1/predict?heatmap=true", files={"file": ("face.jpg", jpeg_bytes(seed=2), "image/jpeg")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["heatmap_error"] is None
    (face,) = body["faces"]
    png = base64.b64decode(face["heatmap_png"], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.mode == "RGB" and min(image.size) >= 64
    assert "heatmap" in body["timing_ms"]


def test_client_file_name_is_only_a_label(client: TestClient) -> None:
    data = jpeg_bytes()
    for sent, shown in (("../../../etc/passwd.jpg", "passwd.jpg"), ("C:\\Users\\me\\face.jpg", "face.jpg")):
        response = client.post("/v1/predict", files={"file": (sent, data, "image/jpeg")})
        assert response.status_code == 200
        assert response.json()["path"] == shown
    assert clean_filename("a\x00b\x1bc.jpg") == "abc.jpg" and clean_filename("../") == "upload"
    assert clean_filename("x" * 500) == "x" * 200


# --- errors
def test_upload_over_the_size_limit_is_413(client: TestClient) -> None:
    big = b"\xff\xd8" + bytes(int(UPLOAD_LIMIT_MB * 1024 * 1024) + 200_000)
    raw = client.post("/v1/predict", content=big, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 413 and "too large" in raw.json()["detail"]
    multipart = client.post("/v1/predict", files={"file": ("big.jpg", big, "image/jpeg")})
    assert multipart.status_code == 413


def test_streamed_upload_without_content_length_is_cut_at_the_limit(client: TestClient) -> None:
    chunk = bytes(256 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(16):  # 4 MB, sent chunked: only counting while it streams can catch it
            yield chunk

    response = client.post("/v1/predict", content=body(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 413


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    for content_type in ("text/plain", "application/json"):
        response = client.post("/v1/predict", content=b'{"a": 1}', headers={"content-type": content_type})
        assert response.status_code == 415
        assert content_type in response.json()["detail"]
    batch_raw = client.post(
        "/v1/predict/batch", content=png_bytes(16, 16), headers={"content-type": "image/png"}
    )
    assert batch_raw.status_code == 415


def test_text_file_is_422_with_the_loaders_reason(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", files={"file": ("notes.txt", b"shopping list\nmilk\n", "text/plain")}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "notes.txt: not an image (content looks like text/HTML)"


def test_truncated_jpeg_is_422(client: TestClient) -> None:
    data = jpeg_bytes()
    response = client.post("/v1/predict", files={"file": ("cut.jpg", data[: len(data) // 2], "image/jpeg")})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("cut.jpg: ") and "truncated" in detail


def test_empty_and_missing_uploads_are_422(client: TestClient) -> None:
    empty = client.post("/v1/predict", files={"file": ("empty.png", b"", "image/png")})
    assert empty.status_code == 422 and empty.json()["detail"] == "empty.png: empty file (0 bytes)"
    wrong_field = client.post("/v1/predict", files={"image": ("a.png", png_bytes(16, 16), "image/png")})
    assert wrong_field.status_code == 422 and "'file'" in wrong_field.json()["detail"]


def test_malformed_multipart_is_400(client: TestClient) -> None:
    head = b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    for body in (
        head + b"no closing boundary",
        b"garbage without any boundary",
        b"--abc\r\nBad Header\r\n\r\n",
    ):
        response = client.post(
            "/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=abc"}
        )
        assert response.status_code == 400 and "malformed multipart body" in response.json()["detail"]
    no_boundary = client.post("/v1/predict", content=b"x", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400


def test_image_over_the_pixel_limit_is_422_with_the_reason(client: TestClient) -> None:
    data = png_bytes(2100, 2000)  # 4.2 MP > 4 MP, yet a small file
    assert len(data) < UPLOAD_LIMIT_MB * 1024 * 1024
    response = client.post("/v1/predict", files={"file": ("huge.png", data, "image/png")})
    assert response.status_code == 422
    assert "huge.png: image too large: 2100x2000" in response.json()["detail"]


def test_unknown_paths_and_methods(client: TestClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/predict").status_code == 405
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404


# --- batch
def test_batch_mixes_good_and_bad_files_with_per_file_errors(client: TestClient, detector: Detector) -> None:
    real, fake = dfdc_image("Real"), dfdc_image("Fake")
    truncated = fake.read_bytes()[:500]
    files = [
        ("files", (real.name, real.read_bytes(), "image/jpeg")),
        ("files", ("notes.txt", b"not an image", "text/plain")),
        ("files", ("cut.jpg", truncated, "image/jpeg")),
        ("files", (fake.name, fake.read_bytes(), "image/jpeg")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and body["errors"] == 2
    assert [item["path"] for item in body["results"]] == [real.name, "notes.txt", "cut.jpg", fake.name]
    assert [item["status"] for item in body["results"]] == [200, 422, 422, 200]
    assert body["results"][1]["error"] == "notes.txt: not an image (content looks like text/HTML)"
    assert body["results"][2]["error"].startswith("cut.jpg: ") and body["results"][2]["result"] is None
    expected = detector.predict([real, fake])
    for item, prediction in zip([body["results"][0], body["results"][3]], expected, strict=True):
        assert item["error"] is None
        assert item["result"]["prob_fake"] == pytest.approx(prediction.prob_fake, abs=1e-5)
        assert item["result"]["label"] == prediction.label


def test_batch_limits_files_and_file_size(client: TestClient) -> None:
    small = png_bytes(16, 16)
    too_many = [("files", (f"{i}.png", small, "image/png")) for i in range(17)]
    response = client.post("/v1/predict/batch", files=too_many)
    assert response.status_code == 413 and "at most 16" in response.json()["detail"]
    big = b"\x89PNG" + bytes(int(UPLOAD_LIMIT_MB * 1024 * 1024) + 10)
    mixed = client.post(
        "/v1/predict/batch",
        files=[("files", ("big.png", big, "image/png")), ("files", ("ok.png", small, "image/png"))],
    )
    assert mixed.status_code == 200
    statuses = [(item["path"], item["status"]) for item in mixed.json()["results"]]
    assert statuses == [("big.png", 413), ("ok.png", 200)]
    assert "file too large" in mixed.json()["results"][0]["error"]
    assert (
        client.post("/v1/predict/batch", files=[("file", ("a.png", small, "image/png"))]).status_code == 422
    )


# --- queue, timeout
def test_full_queue_is_503_with_retry_after_and_timeouts_are_504(model: str, monkeypatch) -> None:
    """queue_size=1 and an inference held on an event: the job times out (504) but keeps its slot until
    its thread ends, so the next request is refused (503 + Retry-After); released, service recovers."""
    app = create_app(model, queue_size=1, timeout_s=1.0, threads=1)
    release = threading.Event()
    with TestClient(app) as client:
        service = app.state.service
        real_score = service.scorer.score

        def held_score(*args, **kwargs):
            release.wait(timeout=60)
            return real_score(*args, **kwargs)

        monkeypatch.setattr(service.scorer, "score", held_score)
        data = jpeg_bytes()
        headers = {"content-type": "image/jpeg"}
        started = time.monotonic()
        first = client.post("/v1/predict", content=data, headers=headers)
        assert first.status_code == 504 and "timeout" in first.json()["detail"]
        assert time.monotonic() - started >= 1.0
        assert service.pool.in_flight == 1  # the held job still runs and still counts

        busy = client.post("/v1/predict", content=data, headers=headers)
        assert busy.status_code == 503
        assert int(busy.headers["retry-after"]) >= 1 and "busy" in busy.json()["detail"]

        release.set()
        deadline = time.monotonic() + 30
        while service.pool.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.pool.in_flight == 0
        service.pool.timeout_s = 600  # the 1 s limit was for the held job; a busy CI box may need more
        assert client.post("/v1/predict", content=data, headers=headers).status_code == 200


# --- page, docs, logs
def test_page_and_its_assets_are_served_without_external_references(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert 'id="drop-zone"' in html and 'type="file"' in html and "multiple" in html
    for asset, media in (("app.js", "javascript"), ("style.css", "text/css")):
        assert f"/static/{asset}" in html
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and media in response.headers["content-type"]
        assert "http://" not in response.text and "https://" not in response.text
    assert "http://" not in html and "https://" not in html


def test_openapi_describes_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/healthz", "/readyz"} <= set(schema["paths"])
    predict = schema["paths"]["/v1/predict"]["post"]
    assert {"multipart/form-data", "image/*"} <= set(predict["requestBody"]["content"])
    assert {"413", "415", "422", "503", "504"} <= set(predict["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_docs_page_works_offline(client: TestClient) -> None:
    pytest.importorskip(
        "fastapi_offline", reason="offline /docs assets come from fastapi-offline (not installed)"
    )
    html = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html and "/openapi.json" in html
    assert "cdn.jsdelivr.net" not in html
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_each_request_is_one_json_log_line(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        response = client.post("/v1/predict", content=b"plain", headers={"content-type": "text/plain"})
    finally:
        logger.removeHandler(handler)
    request_id = response.headers["x-request-id"]
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["request_id"] == request_id and entry["message"] == "request"
    assert entry["method"] == "POST" and entry["path"] == "/v1/predict" and entry["status"] == 415
    assert isinstance(entry["latency_ms"], float) and entry["latency_ms"] >= 0
    assert len(request_id) == 32 and all(c in "0123456789abcdef" for c in request_id)


def test_serve_refuses_a_missing_model_before_starting(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deepfake_detector.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "nothing-here"), "--port", "1"])
    assert result.exit_code == 2
    assert "nothing-here: no such model file or folder" in " ".join(result.output.split())
    bad_engine = CliRunner().invoke(app, ["serve", "--engine", "gpu"])
    assert bad_engine.exit_code == 2
    assert "'gpu' is not one of 'auto', 'torch', 'onnx'" in " ".join(
        bad_engine.output.replace("│", " ").split()
    )
