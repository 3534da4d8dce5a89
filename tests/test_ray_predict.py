"""`predict-dataset`: sources, the local engine, and Ray Data giving the same rows on a local cluster."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from inference_helpers import make_bundle, shared_images, write_images
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.scale import RESULT_SCHEMA, SourceError, list_source, predict_dataset


def write_manifest(path: Path, paths: list[str]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows([p, "real"] for p in paths)
    return path


def test_sources_folder_manifests_and_clear_errors(tmp_path: Path) -> None:
    images = write_images(tmp_path / "data" / "b", 2) + write_images(tmp_path / "data" / "a", 1, ext=".png")
    (tmp_path / "data" / "notes.txt").write_text("not an image")
    assert list_source(str(tmp_path / "data")) == sorted(str(p) for p in images)

    # Relative manifest paths are relative to the manifest's folder, absolute ones stay.
    manifest = write_manifest(tmp_path / "data" / "list.csv", ["b/img_001.jpg", str(images[0])])
    assert list_source(str(manifest)) == [str(tmp_path / "data" / "b" / "img_001.jpg"), str(images[0])]
    pq.write_table(pa.table({"path": ["a/img_000.png"]}), tmp_path / "data" / "list.parquet")
    assert list_source(str(tmp_path / "data" / "list.parquet")) == [
        str(tmp_path / "data" / "a" / "img_000.png")
    ]
    assert list_source(f"file://{tmp_path / 'data' / 'a'}") == [
        f"file://{tmp_path / 'data' / 'a' / 'img_000.png'}"
    ]

    with pytest.raises(SourceError, match="no such folder"):
        list_source(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no image files"):
        list_source(str(tmp_path / "empty"))
    pq.write_table(pa.table({"file": ["x.jpg"]}), tmp_path / "bad.parquet")
    with pytest.raises(SourceError, match=r"bad\.parquet: a manifest needs a 'path' column"):
        list_source(str(tmp_path / "bad.parquet"))


def test_local_engine_scores_uris_like_paths_and_reports_failures(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "model")
    images = [str(p) for p in write_images(tmp_path / "imgs", 6, size=(64, 64))]
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"<html>not an image</html>")
    plain = images + [str(tmp_path / "imgs" / "broken.jpg")]
    uris = [f"file://{p}" for p in plain] + [f"file://{tmp_path / 'imgs' / 'gone.jpg'}"]

    by_path = predict_dataset(plain, str(bundle), tmp_path / "plain.parquet", batch_size=4, shard_rows=4)
    by_uri = predict_dataset(uris, str(bundle), tmp_path / "uri.parquet", batch_size=4, shard_rows=4)
    assert (by_path.images, by_path.errors) == (7, 1)
    assert (by_uri.images, by_uri.errors) == (8, 2)

    plain_rows = pq.read_table(tmp_path / "plain.parquet").to_pylist()
    uri_rows = pq.read_table(tmp_path / "uri.parquet").to_pylist()
    assert pq.read_schema(tmp_path / "uri.parquet").names == RESULT_SCHEMA.names
    assert [r["path"] for r in plain_rows] == plain and [r["path"] for r in uri_rows] == uris
    for a, b in zip(plain_rows, uri_rows[:-1], strict=True):
        # Same bytes in the same batches: exactly the same numbers.
        assert {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}
    assert plain_rows[-1]["prob_fake"] is None and "not an image" in plain_rows[-1]["error"]
    assert uri_rows[-1]["error"] == "object not found" and uri_rows[-1]["label"] == ""


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["predict-dataset", str(tmp_path / "none"), "--engine", "spark"])
    assert result.exit_code == 2 and "'spark' is not one of" in " ".join(
        result.output.replace("│", " ").split()
    )
    result = runner.invoke(app, ["predict-dataset", str(tmp_path / "none"), "--out", "x.csv"])
    assert result.exit_code == 2 and ".parquet" in result.output
    result = runner.invoke(
        app, ["predict-dataset", str(tmp_path / "none"), "--out", str(tmp_path / "r.parquet")]
    )
    assert result.exit_code == 2 and "none: no such folder" in " ".join(result.output.split())


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray Data is an optional extra: pip install '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_gives_the_local_rows(tmp_path: Path, local_ray) -> None:
    bundle = make_bundle(tmp_path / "model")
    images = [
        str(p)
        for p in shared_images("dfdc", "Test", "Real", 150) + shared_images("dfdc", "Test", "Fake", 150)
    ]
    if len(images) < 300:  # no shared data here: synthetic images of the same size
        images = [str(p) for p in write_images(tmp_path / "synthetic", 300, size=(224, 224))]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    manifest = write_manifest(tmp_path / "manifest.csv", images[:150] + ["broken.jpg"] + images[150:])

    runner = CliRunner()
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.parquet"
        args = [
            "predict-dataset",
            str(manifest),
            "--model",
            str(bundle),
            "--runner",
            engine,
            "--out",
            str(out),
        ]
        # 64-image shards: five shards spread over the two actors, returned in input order.
        result = runner.invoke(app, [*args, "--batch-size", "32", "--shard-rows", "64", "--num-actors", "2"])
        assert result.exit_code == 1, result.output  # 1: one file could not be read
        assert "301 images, 1 error in" in " ".join(result.output.split())
        outputs[engine] = pq.read_table(out).to_pylist()

    local_rows, ray_rows = outputs["local"], outputs["ray"]
    assert len(local_rows) == len(ray_rows) == 301
    assert [r["path"] for r in ray_rows] == [r["path"] for r in local_rows]
    for a, b in zip(local_rows, ray_rows, strict=True):
        for key in ("label", "face_count", "faces", "error", "note", "threshold", "uncertain_band"):
            assert a[key] == b[key], (a["path"], key)
        if a["prob_fake"] is None:
            assert b["prob_fake"] is None
        else:
            assert b["prob_fake"] == pytest.approx(a["prob_fake"], abs=1e-6)
    broken = next(r for r in ray_rows if r["path"].endswith("broken.jpg"))
    assert broken["error"] and broken["prob_fake"] is None
    assert len({r["label"] for r in ray_rows if not r["error"]} - {"real", "fake", "uncertain"}) == 0
