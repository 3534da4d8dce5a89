"""Manifest CSVs as people make them: Excel's byte-order mark, NUL bytes, huge fields, a file in
two splits. Each is read or refused with one line naming the file (and line), and train warns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from inference_helpers import write_images

from deepfake_detector.data import DatasetError
from deepfake_detector.data.manifest import paths_in_several_splits, read_csv_manifest


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    return write_images(tmp_path / "img", 4, seed=1)


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_a_byte_order_mark_from_excel_is_accepted(tmp_path: Path, images: list[Path]) -> None:
    rows = "".join(f"{p.name},{'real' if i % 2 else 'fake'},train\n" for i, p in enumerate(images))
    csv_path = _csv(tmp_path / "img" / "m.csv", "path,label,split\n" + rows, encoding="utf-8-sig")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    manifest = read_csv_manifest(csv_path)
    assert [Path(s.path).name for s in manifest] == [p.name for p in images]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.jpg,real\x00,train\n", "unknown label 'real\\\\x00'"),
        ("a\x00.jpg,real,train\n", "the path holds a NUL byte"),
        ("x" * 200_000 + ",real,train\n", "not a readable CSV row .*field larger than"),
    ],
    ids=["nul-in-label", "nul-in-path", "200k-field"],
)
def test_an_unreadable_row_is_one_line_naming_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    csv_path = _csv(tmp_path / "m.csv", "path,label,split\nb.jpg,fake,train\n" + row)
    with pytest.raises(DatasetError, match=rf"m\.csv:\d+: {message}"):
        read_csv_manifest(csv_path)


def test_train_warns_when_a_file_is_in_two_splits(tmp_path: Path, images: list[Path]) -> None:
    import subprocess

    lines = ["path,label,split"]
    for split in ("train", "val"):
        lines += [f"{p.name},{'real' if i % 2 else 'fake'},{split}" for i, p in enumerate(images)]
    csv_path = _csv(tmp_path / "img" / "m.csv", "\n".join(lines) + "\n")
    assert len(paths_in_several_splits(read_csv_manifest(csv_path))) == 4
    done = subprocess.run(
        [sys.executable, "-m", "deepfake_detector", "train", str(csv_path), "--preset", "seed", "--epochs", "1",
         "--img-size", "64", "--out", str(tmp_path / "run"), "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 file(s) are listed in more than one split" in done.stderr
