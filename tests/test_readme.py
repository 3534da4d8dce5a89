"""The README's examples run as written: every code block marked `<!-- tested: ... -->`, in a
folder holding the files they name (photo.jpg, photos/, a small mydata/ dataset), with this
checkout's .venv and the Hugging Face Hub replaced by a local folder (DEEPFAKE_DETECTOR_HUB_DIR).
Lines that start with `make` (the set-up this test already runs in) are the only ones skipped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from service_helpers import dfdc_image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DFDC = ROOT / ".." / "shared" / "data" / "dfdc"
BLOCK = re.compile(r"<!-- tested:[^>]*-->\n```(bash|python)\n(.*?)```", re.S)


def tested_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """photo.jpg (a dfdc Test fake) and photos/ (two real, one fake), and .venv linked in."""
    shutil.copyfile(dfdc_image("Fake", 0), tmp_path / "photo.jpg")
    (tmp_path / "photos").mkdir()
    for k, path in enumerate((dfdc_image("Real", 0), dfdc_image("Real", 1), dfdc_image("Fake", 1))):
        shutil.copyfile(path, tmp_path / "photos" / f"{k}_{path.name}")
    for split in ("Train", "Validation", "Test"):  # mydata/: 12 dfdc images per split and class
        for cls in ("Real", "Fake"):
            folder = tmp_path / "mydata" / split / cls
            folder.mkdir(parents=True)
            source = SHARED_DFDC / split / cls
            for path in sorted(source.glob("*.jpg"))[:12] if source.is_dir() else []:
                shutil.copyfile(path, folder / path.name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    return tmp_path


def test_the_readme_marks_its_quick_start_and_python_examples() -> None:
    kinds = [kind for kind, _ in tested_blocks()]
    assert kinds.count("bash") >= 1 and kinds.count("python") >= 2


@pytest.mark.parametrize("index", range(len(tested_blocks())))
def test_readme_example_runs_as_written(index: int, workdir: Path) -> None:
    kind, code = tested_blocks()[index]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "120",
        "DEEPFAKE_DETECTOR_HUB_DIR": str(workdir / "hub"),
    }
    if kind == "bash":
        lines = [line for line in code.splitlines() if line.strip() and not line.startswith("make ")]
        script = "set -euo pipefail\n" + "\n".join(lines)
        done = subprocess.run(
            ["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
        )
    else:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
        )
    assert done.returncode == 0, f"README block {index} ({kind}) failed:\n{code}\n{done.stderr[-3000:]}"
    if kind == "bash" and "--save annotated/" in code:
        assert len(list((workdir / "annotated").glob("*.jpg"))) == 3
        assert (workdir / "report" / "index.html").is_file()
        assert re.search(r"photo\.jpg\s.*(fake|real|uncertain)", done.stdout)
    if kind == "bash" and "push runs/mine" in code:
        assert "Model card" in done.stdout and (workdir / "runs" / "mine" / "MODEL_CARD.md").is_file()
        assert (workdir / "out" / "eval" / "report.html").is_file() and (workdir / "out" / "eda").is_dir()
        assert (workdir / "hub" / "you" / "my-detector" / "main" / "model.json").is_file()
        assert re.search(r"photo\.jpg\s.*(fake|real|uncertain)", done.stdout)
    if kind == "python" and "photo.annotated.jpg" in code:
        assert Image.open(workdir / "photo.annotated.jpg").size == Image.open(workdir / "photo.jpg").size
        label, prob, _ = done.stdout.split()
        assert label in ("fake", "real", "uncertain") and 0.0 <= float(prob) <= 1.0
