"""Hugging Face Hub: push a model, load it back by hf://owner/name[@revision], one-line errors.

Everything runs offline: against the file-based stand-in (DEEPFAKE_DETECTOR_HUB_DIR), and against
huggingface_hub itself with HF_HUB_OFFLINE=1 or with its calls replaced by recorders.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from service_helpers import PACKAGED_DEFAULT, dfdc_image
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.hub import HUB_DIR_ENV, MODEL_PATTERNS, HfHub, HubError, hub_api, push_model
from deepfake_detector.hub_local import LocalHub
from deepfake_detector.inference import Detector
from deepfake_detector.locate import ModelNotFound

runner = CliRunner()
NOT_UPLOADED = ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "stray.ckpt", "notes.pkl", "weights.pth")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped fast model as a finished run: with checkpoints, pickles and a data.json beside it."""
    if not (PACKAGED_DEFAULT / "model.json").is_file():
        pytest.fail(f"{PACKAGED_DEFAULT}: the packaged fast model is needed", pytrace=False)
    run = tmp_path_factory.mktemp("run") / "fast-run"
    shutil.copytree(PACKAGED_DEFAULT, run)
    (run / "MODEL_CARD.md").unlink(missing_ok=True)  # push makes one when a run has none
    for name in NOT_UPLOADED:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(b"not for the hub")
    data = {"root": "/home/someone/private/datasets/dfdc", "name": "dfdc", "counts": {}}
    (run / "data.json").write_text(json.dumps(data))
    return run


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "hub"
    monkeypatch.setenv(HUB_DIR_ENV, str(folder))
    return folder


def prob_fake(model: str | Path, image: Path) -> float:
    return Detector.load(model).predict([image])[0].prob_fake


def test_pushed_model_loads_back_and_scores_the_same(run_dir: Path, hub: Path) -> None:
    result = push_model(run_dir, "me/model", message="first")
    repo = hub / "me" / "model" / "main"
    uploaded = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert uploaded == result.files
    assert {"model.json", "model.safetensors", "model.onnx", "config.yaml", "data.json"} <= set(uploaded)
    assert {"MODEL_CARD.md", "README.md"} <= set(uploaded)
    assert not [f for f in uploaded if f.endswith((".ckpt", ".pkl", ".pth")) or f.startswith("checkpoints")]
    assert json.loads((repo / "data.json").read_text())["root"] == "dfdc"  # no local path on the hub

    image = dfdc_image("Fake")
    assert prob_fake("hf://me/model", image) == pytest.approx(prob_fake(run_dir, image), abs=1e-6)
    loaded = Detector.load("hf://me/model")
    assert loaded.folder is not None and not list(loaded.folder.rglob("*.ckpt"))


def test_readme_carries_the_hub_front_matter_and_the_card(run_dir: Path, hub: Path) -> None:
    push_model(run_dir, "me/card", license="mit")
    text = (hub / "me" / "card" / "main" / "README.md").read_text()
    assert text.startswith("---\n")
    front, card = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["license"] == "mit" and meta["library_name"] == "deepfake-detector"
    assert meta["tags"] == ["deepfake-detection", "image-classification"]
    assert card.strip() == (hub / "me" / "card" / "main" / "MODEL_CARD.md").read_text().strip()
    assert "Detects: face swaps like DFDC's" in card

    push_model(run_dir, "me/card2")  # default: the licence is the card's to explain
    meta = yaml.safe_load((hub / "me" / "card2" / "main" / "README.md").read_text().split("---\n")[1])
    assert meta["license"] == "other" and meta["license_link"] == "MODEL_CARD.md"


def test_revisions_are_branches(run_dir: Path, hub: Path) -> None:
    result = push_model(run_dir, "me/model", revision="v2")
    assert result.revision == "v2" and "hf://me/model@v2" in result.describe()
    assert Detector.load("hf://me/model@v2").spec.name == "fast-dfdc"
    with pytest.raises(ModelNotFound) as caught:
        Detector.load("hf://me/model@v3")
    assert str(caught.value) == "hf://me/model@v3: no revision 'v3' in the repository"


def test_missing_repo_bad_reference_and_no_model_json_are_one_line(hub: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        Detector.load("hf://me/nothing-here")
    message = str(caught.value)
    assert message.startswith("hf://me/nothing-here: no such repository") and "\n" not in message

    with pytest.raises(ModelNotFound, match="not a Hub model reference"):
        Detector.load("hf://me/a/b")

    stand_in = LocalHub(hub)
    stand_in.create_repo("me/notes", exist_ok=True)
    (tmp_path / "upload").mkdir()
    (tmp_path / "upload" / "README.md").write_text("just notes\n")
    stand_in.upload_folder(repo_id="me/notes", folder_path=tmp_path / "upload")
    with pytest.raises(ModelNotFound) as caught:
        Detector.load("hf://me/notes")
    assert (
        str(caught.value) == "hf://me/notes: the repository has no model.json (not a deepfake-detector model)"
    )


def test_the_stand_in_copies_files_and_honours_patterns(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "domain").mkdir(parents=True)
    for name in ("model.json", "head.json", "domain/head.safetensors", "a.ckpt", "notes.txt"):
        (source / name).write_text(name)
    stand_in = LocalHub(tmp_path / "hub")
    stand_in.create_repo("me/x")
    stand_in.upload_folder(repo_id="me/x", folder_path=source, ignore_patterns=["*.ckpt"])
    stored = tmp_path / "hub" / "me" / "x" / "main"
    assert sorted(p.name for p in stored.rglob("*") if p.is_file()) == sorted(
        ["model.json", "head.json", "head.safetensors", "notes.txt"]
    )
    folder = Path(stand_in.snapshot_download("me/x", allow_patterns=MODEL_PATTERNS))
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == ["domain/head.safetensors", "head.json", "model.json"]
    assert not (folder / "model.json").is_symlink() and (folder / "model.json").read_text() == "model.json"


def test_push_refuses_what_is_not_a_finished_model(tmp_path: Path, hub: Path) -> None:
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(HubError, match="not a finished model folder, no model.json"):
        push_model(unfinished, "me/x")
    result = runner.invoke(app, ["push", str(unfinished), "me/x"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "not a finished model folder" in result.stderr
    assert not hub.exists()  # nothing was created


def test_a_fused_model_goes_up_with_its_cnn(hub: Path) -> None:
    result = push_model("default", "me/default")
    repo = hub / "me" / "default" / "main"
    assert {"head.json", "head.safetensors", "domain/head.json", "cnn/model.json", "cnn/model.onnx"} <= set(
        result.files
    )
    assert json.loads((repo / "model.json").read_text())["fusion"]["cnn"] == "cnn"
    # The training lists go too, without this machine's folders: evaluation can still leave them out.
    assert {"train_manifest.json.gz", "cnn/train_manifest.json.gz"} <= set(result.files)
    listing = json.loads(gzip.decompress((repo / "train_manifest.json.gz").read_bytes()))
    assert [s["root"] for s in listing["sources"]] == ["dfdc", "stylegan-ffhq"]
    assert all(len(row[-1]) == 64 for s in listing["sources"] for row in s["files"])
    image = dfdc_image("Real")
    assert prob_fake("hf://me/default", image) == pytest.approx(prob_fake("default", image), abs=1e-6)


def test_cli_push_then_predict_with_an_hf_model(run_dir: Path, hub: Path) -> None:
    pushed = runner.invoke(app, ["push", str(run_dir), "me/cli", "--message", "from the CLI", "--private"])
    assert pushed.exit_code == 0, pushed.output
    assert "pushed" in pushed.stdout and "hf://me/cli" in pushed.stdout
    assert json.loads((hub / "me" / "cli" / "repo.json").read_text()) == {"private": True}
    assert json.loads((hub / "me" / "cli" / "commits.jsonl").read_text())["message"] == "from the CLI"

    image = dfdc_image("Fake")
    predicted = runner.invoke(app, ["predict", str(image), "--model", "hf://me/cli", "--format", "jsonl"])
    assert predicted.exit_code == 0, predicted.output
    row = json.loads(predicted.stdout.strip().splitlines()[0])
    assert row["prob_fake"] == pytest.approx(prob_fake(run_dir, image), abs=1e-6)

    missing = runner.invoke(app, ["predict", str(image), "--model", "hf://me/none"])
    assert missing.exit_code == 2 and "hf://me/none: no such repository" in missing.stderr


def test_without_the_variable_the_real_hub_is_used_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(HUB_DIR_ENV, raising=False)
    assert isinstance(hub_api(), HfHub)
    home = tmp_path / "hf-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != HUB_DIR_ENV}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(home))
    ref = "hf://deepfake-detector-tests/no-such-model@main"
    done = subprocess.run(
        [sys.executable, "-m", "deepfake_detector", "info", ref],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip() == f"error: {ref}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set"
    )


def test_the_real_adapter_passes_repo_revision_and_patterns(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.delenv(HUB_DIR_ENV, raising=False)
    calls: list[tuple[str, dict]] = []
    snapshot = tmp_path / "snapshot"
    shutil.copytree(PACKAGED_DEFAULT, snapshot)

    def snapshot_download(repo_id: str, **kwargs) -> str:
        calls.append((repo_id, kwargs))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert Detector.load("hf://me/model@abc123").spec.name == "fast-dfdc"
    repo_id, kwargs = calls[0]
    assert repo_id == "me/model" and kwargs["revision"] == "abc123"
    assert kwargs["allow_patterns"] == MODEL_PATTERNS and kwargs["library_name"] == "deepfake-detector"


def test_the_real_adapter_creates_the_repo_and_uploads_the_staged_files(run_dir: Path, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.delenv(HUB_DIR_ENV, raising=False)
    seen: dict[str, object] = {}

    class RecordingApi:
        def __init__(self, **kwargs) -> None:
            seen["init"] = kwargs

        def create_repo(self, repo_id: str, **kwargs) -> str:
            seen["create_repo"] = (repo_id, kwargs)
            return f"https://huggingface.co/{repo_id}"

        def create_branch(self, repo_id: str, **kwargs) -> None:
            seen["create_branch"] = (repo_id, kwargs)

        def upload_folder(self, **kwargs) -> str:
            folder = Path(kwargs["folder_path"])
            seen["files"] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            seen["upload_folder"] = kwargs
            return "https://huggingface.co/me/model/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    result = push_model(run_dir, "me/model", private=True, revision="dev", message="hello")
    assert seen["create_repo"] == ("me/model", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert seen["create_branch"] == ("me/model", {"branch": "dev", "exist_ok": True, "repo_type": "model"})
    upload = seen["upload_folder"]
    assert (
        upload["repo_id"] == "me/model"
        and upload["revision"] == "dev"
        and upload["commit_message"] == "hello"
    )
    assert "*.ckpt" in upload["ignore_patterns"]
    assert seen["files"] == result.files and not [f for f in result.files if f.endswith(".ckpt")]
