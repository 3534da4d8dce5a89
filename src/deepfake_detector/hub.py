"""Models on the Hugging Face Hub: `hf://owner/name[@revision]` references, and `push`.

    download_model("hf://me/deepfakes@v2")       # -> the model folder in the HF cache
    push_model("runs/mine", "me/deepfakes")      # model files + MODEL_CARD.md (+ README.md)

Every call goes through a small interface (`HubApi`: create_repo, create_branch, upload_folder,
snapshot_download, with huggingface_hub's signatures): huggingface_hub itself by default, or a
file-based stand-in (hub_local.LocalHub) when DEEPFAKE_DETECTOR_HUB_DIR names a folder, for tests
and air-gapped mirrors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deepfake_detector.hub_local import HUB_DIR_ENV, HubAccessError, LocalHub, matches
from deepfake_detector.locate import ModelNotFound

HF_SCHEME = "hf://"
CNN_FOLDER = "cnn"  # where a fused model's CNN goes in an uploaded repository
# The files of a model folder: what push uploads and what an hf:// reference downloads.
MODEL_PATTERNS = [
    "model.json",
    "*.safetensors",
    "head.json",
    "domain/*",
    f"{CNN_FOLDER}/*",
    "config.yaml",
    "data.json",
    "model.onnx",
    "model.int8.onnx",
    "MODEL_CARD.md",
    "train_manifest.json.gz",  # the training files' names and hashes: evaluation leaves them out
]
NEVER_UPLOAD = ["*.ckpt", "*.pt", "*.pth", "*.pkl", "*.pickle", "checkpoints/*"]
WEIGHT_FILES = ("model.safetensors", "head.safetensors", "model.onnx", "model.int8.onnx")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REPO_ID = re.compile(rf"{_NAME}(/{_NAME})?")
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class HubError(ValueError):
    """A push that cannot be done, in one line."""


class HubApi(Protocol):
    def create_repo(self, repo_id: str, **kwargs: Any) -> Any: ...
    def create_branch(self, repo_id: str, *, branch: str, **kwargs: Any) -> Any: ...
    def upload_folder(self, *, repo_id: str, folder_path: str | Path, **kwargs: Any) -> Any: ...
    def snapshot_download(self, repo_id: str, **kwargs: Any) -> str: ...


class HfHub:
    """huggingface_hub behind the HubApi interface (its HfApi, and its snapshot_download)."""

    def __init__(self) -> None:
        try:
            import huggingface_hub
        except ImportError as exc:
            raise HubAccessError(
                "the Hugging Face Hub needs huggingface_hub: pip install 'deepfake-detector[hub]'"
            ) from exc
        from deepfake_detector import __version__

        self._hf = huggingface_hub
        self._ids = {"library_name": "deepfake-detector", "library_version": __version__}
        self._api = huggingface_hub.HfApi(**self._ids)

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
        return self._api.create_repo(repo_id, **kwargs)

    def create_branch(self, repo_id: str, *, branch: str, **kwargs: Any) -> Any:
        return self._api.create_branch(repo_id, branch=branch, **kwargs)

    def upload_folder(self, *, repo_id: str, folder_path: str | Path, **kwargs: Any) -> Any:
        return self._api.upload_folder(repo_id=repo_id, folder_path=folder_path, **kwargs)

    def snapshot_download(self, repo_id: str, **kwargs: Any) -> str:
        return self._hf.snapshot_download(repo_id, **self._ids, **kwargs)


def hub_api() -> HubApi:
    """The local stand-in when DEEPFAKE_DETECTOR_HUB_DIR is set, else the real Hub."""
    local = os.environ.get(HUB_DIR_ENV, "").strip()
    return LocalHub(local) if local else HfHub()


def _offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; read it again for each call.
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """hf://owner/name[@revision] -> (owner/name, revision or None)."""
    body = str(ref).removeprefix(HF_SCHEME)
    repo_id, at, revision = body.partition("@")
    repo_id = repo_id.strip("/")
    if not REPO_ID.fullmatch(repo_id) or (at and not REVISION.fullmatch(revision)) or ".." in body:
        raise ModelNotFound(
            f"{ref}: not a Hub model reference; use hf://owner/name or hf://owner/name@revision"
        )
    return repo_id, (revision or None)


def reason(exc: BaseException, revision: str | None = None) -> str:
    """Why a hub call failed, in words, for huggingface_hub's errors (matched by name: they move
    between versions), the stand-in's and network errors."""
    if isinstance(exc, HubAccessError):
        return str(exc)
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = " ".join(str(exc).split()) or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if "GatedRepoError" in names:
        return "the repository is gated: accept its terms on huggingface.co, then log in (`hf auth login`)"
    if "RepositoryNotFoundError" in names:
        return "no such repository on the Hugging Face Hub (or it is private and you are not logged in)"
    if "RevisionNotFoundError" in names:
        return f"no revision {revision!r} in the repository"
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}:
        if _offline():
            return "not in the local Hugging Face cache, and HF_HUB_OFFLINE is set"
        return "the Hugging Face Hub cannot be reached (no network?) and it is not in the local cache"
    if "LocalTokenNotFoundError" in names or status == 401:
        return "not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN"
    if status == 403:
        return "not allowed: your Hugging Face token cannot write to this repository"
    if "HFValidationError" in names:
        return f"not a valid repository id or revision ({text})"
    if names & {"ConnectionError", "ConnectError", "TimeoutException", "Timeout"}:
        return f"cannot reach the Hugging Face Hub ({text})"
    return f"{type(exc).__name__}: {text}"


def download_model(ref: str, api: HubApi | None = None) -> Path:
    """The folder of an hf:// model, downloaded (model files only) into the HF cache if need be."""
    repo_id, revision = parse_ref(ref)
    try:
        hub = api or hub_api()
        folder = hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=MODEL_PATTERNS, local_files_only=_offline()
        )
    except Exception as exc:  # the hub's boundary: any failure becomes one line naming the reference
        raise ModelNotFound(f"{ref}: {reason(exc, revision)}") from exc
    folder = Path(folder)
    if not (folder / "model.json").is_file():
        at = f" at revision {revision!r}" if revision else ""
        raise ModelNotFound(f"{ref}: the repository has no model.json{at} (not a deepfake-detector model)")
    return folder


@dataclass
class PushResult:
    repo_id: str
    revision: str
    url: str
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"pushed {len(self.files)} files to {self.repo_id}@{self.revision}: {self.url}\n"
            f"load it with --model hf://{self.repo_id}"
            + (f"@{self.revision}" if self.revision != "main" else "")
        )


def finished_model(run: str | Path) -> Path:
    """The model folder of RUN, or HubError when it is not a finished one."""
    from deepfake_detector.locate import model_dir
    from deepfake_detector.spec import ModelSpec

    path = Path(str(run))
    if path.is_dir() and not (path / "model.json").is_file():
        hint = " (training has not finished: `train --resume` it)" if (path / "checkpoints").is_dir() else ""
        raise HubError(f"{run}: not a finished model folder, no model.json{hint}")
    try:
        folder = model_dir(run)
    except ModelNotFound as exc:
        raise HubError(str(exc)) from exc
    try:
        ModelSpec.load(folder / "model.json")
    except ValueError as exc:
        raise HubError(f"{run}: not a finished model folder ({exc})") from exc
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise HubError(f"{run}: not a finished model folder, no weights ({', '.join(WEIGHT_FILES)})")
    return folder


def push_model(
    run: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    license: str = "other",
    api: HubApi | None = None,
) -> PushResult:
    """Upload a finished model's files, its card as MODEL_CARD.md and README.md (HF front matter)."""
    folder = finished_model(run)
    repo_id = str(repo_id).removeprefix(HF_SCHEME).strip("/")
    if not REPO_ID.fullmatch(repo_id) or (revision is not None and not REVISION.fullmatch(revision)):
        raise HubError(f"{repo_id}@{revision}: not a Hub repository (owner/name) and branch")
    branch = revision or "main"
    with tempfile.TemporaryDirectory(prefix="dd-push-") as tmp:
        files = stage_model(folder, Path(tmp), license=license)
        try:
            hub = api or hub_api()
            hub.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if branch != "main":
                hub.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
            commit = hub.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                repo_type="model",
                revision=branch,
                commit_message=message or f"Upload {folder.name} (deepfake-detector)",
                allow_patterns=[*MODEL_PATTERNS, "README.md"],
                ignore_patterns=NEVER_UPLOAD,
            )
        except Exception as exc:  # the hub's boundary
            raise HubError(f"{repo_id}: {reason(exc, branch)}") from exc
    url = str(getattr(commit, "commit_url", "") or commit)
    return PushResult(repo_id, branch, url, files)


def uploadable(rel: str) -> bool:
    return matches(rel, MODEL_PATTERNS, NEVER_UPLOAD)


def copy_model_files(src: Path, dst: Path) -> list[str]:
    """The model files of src (MODEL_PATTERNS, never a pickle or checkpoint) copied to dst; a
    cnn/ subfolder is left to stage_model, which copies the CNN a model is fused with."""
    copied = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and uploadable(rel) and not rel.startswith(f"{CNN_FOLDER}/"):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / rel)
            copied.append(rel)
    return copied


def stage_model(folder: Path, dst: Path, license: str = "other") -> list[str]:
    """What push uploads, laid out in dst: the model files; a fused model's CNN in cnn/ (so that the
    repository stands alone); data.json without local paths; MODEL_CARD.md and README.md."""
    from deepfake_detector.modelcard import CARD_FILE, build_model_card

    files = copy_model_files(folder, dst)
    spec = _read_json(dst / "model.json")
    cnn_ref = str((spec.get("fusion") or {}).get("cnn") or "")
    if cnn_ref and not cnn_ref.startswith(HF_SCHEME):
        cnn = _fused_cnn_folder(folder, cnn_ref)
        files += [f"{CNN_FOLDER}/{rel}" for rel in copy_model_files(cnn, dst / CNN_FOLDER)]
        spec["fusion"] = {**spec["fusion"], "cnn": CNN_FOLDER}
        (dst / "model.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for data in (dst / "data.json", dst / CNN_FOLDER / "data.json"):
        if data.is_file():
            _drop_local_paths(data)
    for listing in (dst / "train_manifest.json.gz", dst / CNN_FOLDER / "train_manifest.json.gz"):
        if listing.is_file():
            _drop_local_roots(listing)
    card = (
        (folder / CARD_FILE).read_text(encoding="utf-8") if CARD_FILE in files else build_model_card(folder)
    )
    (dst / CARD_FILE).write_text(card, encoding="utf-8")
    (dst / "README.md").write_text(readme_text(card, license), encoding="utf-8")
    return sorted({*files, CARD_FILE, "README.md"})


def _fused_cnn_folder(folder: Path, ref: str) -> Path:
    from deepfake_detector.locate import model_dir

    local = folder / ref
    try:
        return local if (local / "model.json").is_file() else model_dir(ref)
    except ModelNotFound as exc:
        raise HubError(
            f"{folder}: the CNN it is fused with ({ref}) cannot be found to upload with it"
        ) from exc


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _drop_local_paths(path: Path) -> None:
    """data.json names the dataset folders this machine trained on: keep only their last part."""
    data = _read_json(path)
    records = data.get("sources", []) if isinstance(data, dict) else []
    for record in [data, *records]:
        if isinstance(record, dict) and isinstance(record.get("root"), str):
            record["root"] = Path(record["root"]).name
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _drop_local_roots(path: Path) -> None:
    """The training list keeps relative names and hashes; its roots lose this machine's folders."""
    import gzip

    data = json.loads(gzip.decompress(path.read_bytes()))
    for source in data.get("sources", []):
        if isinstance(source, dict) and isinstance(source.get("root"), str):
            source["root"] = Path(source["root"]).name
    path.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), mtime=0))


def readme_text(card: str, license: str = "other") -> str:
    """The card with the Hub's model-card front matter (licence, tags, library)."""
    import yaml

    meta: dict[str, Any] = {"license": license}
    if license == "other":  # the weights' terms depend on their training data: the card says which
        meta.update(license_name="see-model-card", license_link="MODEL_CARD.md")
    meta.update(
        library_name="deepfake-detector",
        pipeline_tag="image-classification",
        tags=["deepfake-detection", "image-classification"],
    )
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{card}"
