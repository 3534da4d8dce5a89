"""A file-based stand-in for the Hugging Face Hub, for tests and air-gapped mirrors.

Selected by DEEPFAKE_DETECTOR_HUB_DIR=/folder (see hub.py). Each repository is a folder, each
revision a subfolder of it holding the files:

    /folder/<owner>/<name>/main/model.json ...
    /folder/<owner>/<name>/<branch>/...          # "/" in a branch name is stored as "--"
    /folder/.downloads/<owner>--<name>/<revision>/   # what snapshot_download copies out

`create_repo`, `create_branch`, `upload_folder` and `snapshot_download` take huggingface_hub's
arguments (those that matter here; the rest are accepted and ignored) and really copy files,
honouring allow_patterns and ignore_patterns as huggingface_hub does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

HUB_DIR_ENV = "DEEPFAKE_DETECTOR_HUB_DIR"  # names the stand-in's folder (hub.py reads it)
DEFAULT_REVISION = "main"
DOWNLOADS = ".downloads"


class HubAccessError(Exception):
    """A hub call failed for a reason worth one line (no such repository, revision, ...)."""


@dataclass
class LocalCommit:
    """What upload_folder returns (huggingface_hub's CommitInfo has these fields too)."""

    commit_url: str
    oid: str
    commit_message: str


def _patterns(patterns: str | Iterable[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    return [p + "*" if p.endswith("/") else p for p in (p.replace("\\", "/") for p in items)]


def matches(path: str, allow: str | Iterable[str] | None, ignore: str | Iterable[str] | None = None) -> bool:
    """huggingface_hub's rule: kept when it matches an allow pattern (if any) and no ignore pattern."""
    allowed, ignored = _patterns(allow), _patterns(ignore)
    if allowed is not None and not any(fnmatchcase(path, p) for p in allowed):
        return False
    return not (ignored and any(fnmatchcase(path, p) for p in ignored))


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _copy(src: Path, dst: Path, allow: Any, ignore: Any) -> list[str]:
    copied = []
    for rel in _files(src):
        if matches(rel, allow, ignore):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, dst / rel)
            copied.append(rel)
    return copied


class LocalHub:
    """The stand-in: a folder per repository, a subfolder per revision."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _repo(self, repo_id: str) -> Path:
        parts = repo_id.split("/")
        if not all(parts) or len(parts) > 2 or any(p in (".", "..") for p in parts):
            raise HubAccessError(f"not a valid repository id {repo_id!r}")
        return self.root.joinpath(*parts)

    def _revision(self, repo_id: str, revision: str | None, must_exist: bool = True) -> Path:
        repo = self._repo(repo_id)
        if not repo.is_dir():
            raise HubAccessError(f"no such repository in the local hub {self.root} ({HUB_DIR_ENV})")
        name = (revision or DEFAULT_REVISION).replace("/", "--")
        if name in (".", "..") or name.startswith("."):
            raise HubAccessError(f"not a valid revision {revision!r}")
        folder = repo / name
        if must_exist and not folder.is_dir():
            raise HubAccessError(f"no revision {revision!r} in the repository")
        return folder

    def create_repo(
        self, repo_id: str, *, private: bool | None = None, exist_ok: bool = False, **_: Any
    ) -> str:
        repo = self._repo(repo_id)
        if repo.is_dir() and not exist_ok:
            raise HubAccessError(f"repository {repo_id} already exists")
        (repo / DEFAULT_REVISION).mkdir(parents=True, exist_ok=True)
        settings = repo / "repo.json"
        if not settings.is_file():
            settings.write_text(json.dumps({"private": bool(private)}) + "\n")
        return repo.as_uri()

    def create_branch(self, repo_id: str, *, branch: str, exist_ok: bool = False, **_: Any) -> None:
        folder = self._revision(repo_id, branch, must_exist=False)
        if folder.is_dir():
            if not exist_ok:
                raise HubAccessError(f"branch {branch!r} already exists")
            return
        shutil.copytree(self._revision(repo_id, DEFAULT_REVISION), folder)  # a branch starts at main

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str | Path,
        path_in_repo: str | None = None,
        commit_message: str | None = None,
        revision: str | None = None,
        allow_patterns: str | list[str] | None = None,
        ignore_patterns: str | list[str] | None = None,
        **_: Any,
    ) -> LocalCommit:
        target = self._revision(repo_id, revision)
        if path_in_repo:
            target = target / path_in_repo.strip("/")
        copied = _copy(Path(folder_path), target, allow_patterns, ignore_patterns)
        message = commit_message or "Upload folder"
        oid = hashlib.sha1(json.dumps([revision, message, copied]).encode()).hexdigest()
        with open(self._repo(repo_id) / "commits.jsonl", "a", encoding="utf-8") as log:
            log.write(
                json.dumps({"oid": oid, "revision": revision, "message": message, "files": copied}) + "\n"
            )
        return LocalCommit(target.as_uri(), oid, message)

    def snapshot_download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        allow_patterns: str | list[str] | None = None,
        ignore_patterns: str | list[str] | None = None,
        cache_dir: str | Path | None = None,
        local_dir: str | Path | None = None,
        **_: Any,
    ) -> str:
        source = self._revision(repo_id, revision)
        if local_dir is not None:
            dest = Path(local_dir)
        else:
            base = Path(cache_dir) if cache_dir is not None else self.root / DOWNLOADS
            dest = base / repo_id.replace("/", "--") / source.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A fresh copy each time, swapped in whole: no file of an older upload is left behind.
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
        _copy(source, staging, allow_patterns, ignore_patterns)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
        return str(dest)
