"""Turning command-line inputs (files, folders, globs, `-` for stdin) into a list of image and video paths."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from deepfake_detector.data.images import is_image_path
from deepfake_detector.inference.video.frames import is_video_path

_GLOB_CHARS = set("*?[")


@dataclass
class ExpandedInputs:
    paths: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (input as given, why it gave no image)


def expand_inputs(inputs: Iterable[str], stdin: TextIO | None = None) -> ExpandedInputs:
    """Files as given (a non-image file then gets the loader's error), folders searched recursively
    for image and video extensions, glob patterns expanded (`**` recursive), `-` replaced by the paths read
    from stdin one per line. Order is kept; duplicates are dropped."""
    out = ExpandedInputs()
    seen: set[str] = set()

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            out.paths.append(path)

    for item in inputs:
        if item == "-":
            lines = (stdin or sys.stdin).read().splitlines()
            for line in lines:
                if line.strip():
                    _expand_one(line.strip(), add, out)
        else:
            _expand_one(item, add, out)
    return out


def _expand_one(item: str, add: Callable[[str], None], out: ExpandedInputs) -> None:
    if os.path.isdir(item):
        found = folder_inputs(item)
        if not found:
            out.problems.append((item, "folder holds no image or video files"))
        for path in found:
            add(path)
    elif not os.path.exists(item) and _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            out.problems.append((item, "no file matches this pattern"))
        for match in matches:
            if os.path.isdir(match):
                for path in folder_inputs(match):
                    add(path)
            elif is_image_path(match) or is_video_path(match):
                add(match)
    else:
        add(item)  # a missing or non-image file gets its reason from the loader


def folder_images(folder: str | Path) -> list[str]:
    """Image files under a folder, recursively, sorted by path (hidden files and folders skipped)."""
    return _walk(folder, is_image_path)


def folder_inputs(folder: str | Path) -> list[str]:
    """Image and video files under a folder, recursively, sorted by path (hidden ones skipped)."""
    return _walk(folder, lambda name: is_image_path(name) or is_video_path(name))


def _walk(folder: str | Path, wanted: Callable[[str], bool]) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if wanted(f) and not f.startswith("."))
    return sorted(found)
