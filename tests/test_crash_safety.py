"""Crash safety: `train`, `eda` and `predict` killed with SIGKILL part-way, then resumed.

Each end-to-end test kills a real CLI subprocess after phase markers it leaves on disk (run
recorded, an epoch row written, a checkpoint committed, a batch written), resumes it, and checks the
result against an uninterrupted run. Where a kill waits a seeded random delay (CRASH_SEED=n picks
others), it still lands before the next marker, so it never comes after the run finished, however
fast the machine. The unit tests pin down the file helpers the resumes rely on.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import make_bundle, write_images
from PIL import Image
from test_training import checkpoint_epoch, make_dataset, reference_logits, train_cmd
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.manifest import discover
from deepfake_detector.eda.checkpoint import ScanCheckpoint
from deepfake_detector.eda.stats import ANALYSIS_SIZE
from deepfake_detector.fileio import TEMP_SUFFIX, atomic_output, read_jsonl, remove_stale_temps
from deepfake_detector.training.callbacks import read_metrics

SEED = int(os.environ.get("CRASH_SEED", "2026"))
CLI = [sys.executable, "-m", "deepfake_detector"]
EPOCHS = 6


class Child:
    """A CLI subprocess with its output in files (a full pipe would stall it), killed with SIGKILL."""

    def __init__(self, args: list[str], folder: Path, name: str):
        self.err_path = folder / f"{name}.stderr"
        with open(folder / f"{name}.stdout", "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"{what}: the process ended first (exit {self.proc.returncode}): {self.stderr()[-3000:]}"
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{what}: not reached within {timeout} s")
            time.sleep(0.005)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def kill_after(self, seconds: float, next_marker: Callable[[], bool]) -> None:
        """SIGKILL `seconds` from now, or at once when `next_marker()` turns true first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not next_marker():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the process ended before its kill (exit {self.proc.returncode}): {self.stderr()[-3000:]}"
                )
            time.sleep(0.005)
        self.kill()


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    info = _state_and_parent(pid)
    return info is not None and info[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [child for child in pids if alive(child) and (_state_and_parent(child) or ("", 0))[1] == pid]


def run_cli(*args: str):
    """A command run to the end in this process (only the runs that are killed need a subprocess)."""
    return CliRunner().invoke(app, list(args))


def stale_temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(f".*{TEMP_SUFFIX}"))


# --- training --------------------------------------------------------------------------------------


def file_version(path: Path) -> tuple[int, int] | None:
    """Changes whenever the file is replaced (atomic writes rename a new inode over it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@pytest.mark.slow
def test_training_killed_at_three_random_points_resumes_to_a_complete_run(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = make_dataset(tmp_path / "data")
    run = tmp_path / "run"
    metrics = run / "metrics.csv"
    resume = [*CLI, "train", "--resume", str(run), "--quiet"]
    kept: dict[int, dict[str, str]] = {}  # rows a resume must leave as they are (epochs checkpointed)

    def resume_until_written(name: str, marker: Path) -> Child:
        """Resume, and return once this process has written `marker` (a new version of it)."""
        epoch = checkpoint_epoch(run)
        if epoch is not None:
            kept.update({int(r["epoch"]): r for r in read_metrics(metrics) if int(r["epoch"]) <= epoch})
        before = file_version(marker)
        child = Child(resume, tmp_path, name)
        child.wait_until(lambda: file_version(marker) not in (None, before), f"{name}: {marker.name} written")
        return child

    # Kill 1, during data setup or the first epoch: just after the run directory is recorded.
    child = Child(
        train_cmd(data, run, "--epochs", str(EPOCHS), "--set", "early_stopping.patience=100"),
        tmp_path,
        "fresh",
    )
    child.wait_until(lambda: (run / "config.yaml").is_file(), "run directory recorded")
    recorded = {name: (run / name).read_bytes() for name in ("config.yaml", "data.json", "manifest.csv")}
    child.kill_after(rng.uniform(0.0, 0.5), next_marker=(run / "checkpoints" / "last.ckpt").is_file)
    assert not (run / "model.json").exists()
    assert (checkpoint_epoch(run) or 0) == 0, "kill 1 came after the first epoch"

    # Kill 2, mid-epoch: a random fraction of an epoch after an epoch's checkpoint.
    last = run / "checkpoints" / "last.ckpt"
    child = resume_until_written("resume1", last)
    epoch_seconds = float(read_metrics(metrics)[-1]["epoch_seconds"])
    checkpointed = file_version(last)
    child.kill_after(
        rng.uniform(0.2, 0.8) * epoch_seconds, next_marker=lambda: file_version(last) != checkpointed
    )
    assert not (run / "model.json").exists()

    # Kill 3, around checkpoint writing: an epoch's row is written just before its checkpoint.
    child = resume_until_written("resume2", metrics)
    child.kill()  # at once: curves.png is drawn between the row and the checkpoint
    assert not (run / "model.json").exists()
    row_epochs = [int(r["epoch"]) for r in read_metrics(metrics)]
    last_epoch = checkpoint_epoch(run)
    # The window this kill aims at: the epoch's row is out (curves.png is drawn next), its checkpoint
    # is not. The resume must train that epoch again and keep one row for it.
    assert last_epoch is not None and max(row_epochs) == last_epoch + 1, (row_epochs, last_epoch)
    # A kill inside a checkpoint write leaves its temp file, never a torn last.ckpt; plant one too.
    last_bytes = (run / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / f".last.ckpt.killed{TEMP_SUFFIX}").write_bytes(last_bytes[: len(last_bytes) // 2])

    kept.update({int(r["epoch"]): r for r in read_metrics(metrics) if int(r["epoch"]) <= last_epoch})
    final = subprocess.run(resume, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert final.returncode == 0, final.stderr[-3000:]

    rows = read_metrics(metrics)
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS)), "every epoch exactly once, in order"
    assert all(r["train_loss"] and r["val_loss"] and r["val_auc"] for r in rows), rows
    for row in rows:  # a resume continued from its checkpoint: earlier epochs were not trained again
        if int(row["epoch"]) in kept:
            assert row == kept[int(row["epoch"])]
    assert kept, "no kill left a checkpoint to resume from"
    for name, content in recorded.items():
        assert (run / name).read_bytes() == content, f"{name} changed on resume"
    assert checkpoint_epoch(run) == EPOCHS - 1
    assert stale_temps(run) == []

    from deepfake_detector.inference.detector import Detector

    detector = Detector.load(run, engine="torch")
    assert detector.spec.architecture == "seed-cnn" and detector.spec.weights_sha256
    images = (
        sorted((data / "Validation" / "Fake").glob("*.png"))[:2]
        + sorted((data / "Validation" / "Real").glob("*.png"))[:2]
    )
    predictions = detector.predict(images, faces="never")
    assert [p.error for p in predictions] == [""] * 4
    probs = 1 / (1 + np.exp(-reference_logits(run, images) / detector.spec.temperature))
    np.testing.assert_allclose([p.prob_fake for p in predictions], probs, atol=1e-5)
    assert [p.label for p in predictions] == [detector.spec.rule.label(float(q)) for q in probs]


def test_checkpoint_io_writes_whole_files_and_early_stopping_stays_stopped(tmp_path: Path) -> None:
    import torch

    from deepfake_detector.training.callbacks import AtomicCheckpointIO, ResumableEarlyStopping

    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 3, "w": torch.arange(4.0)}, tmp_path / "checkpoints" / "last.ckpt")
    loaded = io.load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.arange(4.0))
    assert stale_temps(tmp_path) == []

    class Trainer:  # the one attribute the hook touches
        should_stop = False

    stopper = ResumableEarlyStopping("val_loss", patience=2)
    trainer = Trainer()
    stopper.on_train_start(trainer, None)
    assert not trainer.should_stop, "a fresh run trains"
    stopper.load_state_dict(
        {"wait_count": 2, "stopped_epoch": 4, "best_score": torch.tensor(0.3), "patience": 2}
    )
    stopper.on_train_start(trainer, None)
    assert trainer.should_stop, "a run resumed after early stopping fired does not train another epoch"


def test_resume_of_a_run_stopped_before_it_was_recorded_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = run_cli("train", "--resume", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "cannot resume" in message and "--out" in message, message


# --- eda -------------------------------------------------------------------------------------------


def make_eda_dataset(root: Path, per_class: int = 120) -> Path:
    """Kaggle layout with a cross-split copy and two unreadable files, so every record kind is stored."""
    rng = np.random.default_rng(1)
    for split in ("Train", "Validation"):
        for cls in ("Real", "Fake"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class // (1 if split == "Train" else 2)):
                coarse = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
                img = Image.fromarray(coarse).resize((96, 96), Image.BICUBIC)
                img.save(folder / f"{i:03d}.jpg", quality=int(rng.integers(70, 95)))
    (root / "Validation" / "Real" / "copy.jpg").write_bytes(
        (root / "Train" / "Real" / "000.jpg").read_bytes()
    )
    (root / "Train" / "Fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Validation" / "Fake" / "page.jpg").write_bytes(b"<html>saved web page</html>")
    return root


def comparable(summary_path: Path) -> dict:
    """summary.json without what a resumed scan legitimately redoes: the run time, and the face
    statistics (a separate pass after the checkpointed scan, which reads its sample again, so it
    sees the file this test spoils)."""
    summary = json.loads(summary_path.read_text())
    summary.pop("runtime_s")
    summary.pop("faces", None)
    summary["warnings"] = [w for w in summary["warnings"] if "face" not in w]
    return summary


def test_eda_killed_mid_scan_resumes_without_rescanning(tmp_path: Path) -> None:
    data = make_eda_dataset(tmp_path / "data")
    manifest = discover(data)
    total = len(manifest)
    clean = run_cli("eda", str(data), "--out", str(tmp_path / "clean"), "--workers", "1")
    assert clean.exit_code == 0, (clean.stderr[-3000:], clean.exception)
    assert not (tmp_path / "clean" / ".eda-scan").exists(), "the checkpoint is removed once the report is out"

    out = tmp_path / "part"
    checkpoint = ScanCheckpoint(out, manifest, ANALYSIS_SIZE)
    child = Child([*CLI, "eda", str(data), "--out", str(out), "--workers", "2"], tmp_path, "eda")
    child.wait_until(checkpoint.sums_path.is_file, "first scan commit")
    os.kill(child.proc.pid, signal.SIGSTOP)  # frozen at its first commit while its pool is listed
    pool = children_of(child.proc.pid)
    assert len(pool) >= 2, "the two decoding processes"
    child.kill()
    deadline = time.monotonic() + 15  # the decoding processes notice they lost their parent and leave
    while any(alive(pid) for pid in pool) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pool if alive(pid)], "pool processes outlived a killed eda"
    assert not (out / "summary.json").exists()
    done = checkpoint.committed()
    assert 0 < done.sum() < total

    # Timing-independent evidence that committed files are not analysed again: spoil one (same size,
    # so the dataset listing is unchanged). Rescanned, it would be reported unreadable.
    readable = [
        i for i in np.flatnonzero(done) if not manifest.samples[i].path.endswith(("broken.jpg", "page.jpg"))
    ]
    spoiled = Path(manifest.samples[readable[-1]].path)
    spoiled.write_bytes(b"\0" * spoiled.stat().st_size)

    refused = run_cli("eda", str(data), "--out", str(out), "--workers", "1")
    message = " ".join(refused.stderr.split())
    assert refused.exit_code == 2 and "interrupted scan" in message and "--resume" in message, refused.stderr

    resumed = run_cli("eda", str(data), "--out", str(out), "--workers", "1", "--resume")
    assert resumed.exit_code == 0, (resumed.stderr[-3000:], resumed.exception)
    logged = re.search(r"resumed: (\d+) of (\d+) images scanned before, (\d+) to go", resumed.stderr)
    assert logged, resumed.stderr
    assert [int(g) for g in logged.groups()] == [done.sum(), total, total - done.sum()]
    assert comparable(out / "summary.json") == comparable(tmp_path / "clean" / "summary.json")
    assert (out / "report.html").is_file() and not (out / ".eda-scan").exists()


def test_eda_resume_refuses_a_checkpoint_of_another_sample(tmp_path: Path) -> None:
    data = make_eda_dataset(tmp_path / "data", per_class=8)
    manifest = discover(data)
    checkpoint = ScanCheckpoint(tmp_path / "out", manifest.sample(3), ANALYSIS_SIZE)
    checkpoint.start()
    checkpoint.close()
    result = run_cli("eda", str(data), "--out", str(tmp_path / "out"), "--resume")
    assert result.exit_code == 2 and "another dataset" in " ".join(result.stderr.split())


def test_scan_checkpoint_drops_lines_past_the_last_commit_and_a_torn_line(tmp_path: Path) -> None:
    from deepfake_detector.eda.stats import analyse_chunk

    data = make_eda_dataset(tmp_path / "data", per_class=8)
    manifest = discover(data)
    items = [(i, s.path, s.label) for i, s in enumerate(manifest.samples)]
    broken = next(item for item in items if item[1].endswith("broken.jpg"))
    first_items = [broken, *[item for item in items if item != broken][:9]]
    second_items = [item for item in items if item not in first_items][:10]
    first, second = analyse_chunk(first_items, ANALYSIS_SIZE), analyse_chunk(second_items, ANALYSIS_SIZE)
    first_indices = sorted(item[0] for item in first_items)
    # Commits after its first chunk only: the second chunk's lines are written but not committed.
    checkpoint = ScanCheckpoint(tmp_path / "out", manifest, ANALYSIS_SIZE, commit_cost_ratio=math.inf)
    checkpoint.start()
    checkpoint.add(first)
    checkpoint.add(second)
    checkpoint.close()
    with open(checkpoint.records_path, "ab") as fh:
        fh.write(b'{"index": 99, "rec')  # a write cut off by the kill

    again = ScanCheckpoint(tmp_path / "out", manifest, ANALYSIS_SIZE)
    loaded = again.load()
    again.close()
    assert np.flatnonzero(again.committed()).tolist() == first_indices
    assert loaded.records == sorted(first.records, key=lambda r: r.index)
    assert loaded.failures == first.failures and first.failures, "unreadable files are stored too"
    assert np.array_equal(loaded.label_count, first.label_count)
    assert np.allclose(loaded.spectrum_sum, first.spectrum_sum)
    lines = read_jsonl(checkpoint.records_path)
    assert sorted(line["index"] for line in lines) == first_indices, "rewritten as the committed lines"


# --- predict ---------------------------------------------------------------------------------------


def predict_args(images: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", str(images), "--model", str(model), "--format", "jsonl", "--out", str(out),
            "--faces", "never", "--batch-size", "8", *extra]  # fmt: skip


def test_predict_killed_mid_write_resumes_with_every_path_once(tmp_path: Path) -> None:
    model = make_bundle(tmp_path / "model")
    images = tmp_path / "images"
    write_images(images, 300, size=(64, 64))
    clean = run_cli(*predict_args(images, model, tmp_path / "clean.jsonl"))
    assert clean.exit_code == 0, (clean.stderr[-3000:], clean.exception)
    expected = {row["path"]: row for row in read_jsonl(tmp_path / "clean.jsonl")}
    assert len(expected) == 300

    out = tmp_path / "part.jsonl"
    child = Child([*CLI, *predict_args(images, model, out)], tmp_path, "predict")
    child.wait_until(lambda: out.is_file() and out.stat().st_size > 0, "first batch written")
    child.kill()  # at once: 292 of the 300 images are still to go
    written = out.read_bytes()
    assert 0 < written.count(b"\n") < 300
    # A kill inside a write leaves a torn last line: cut the last complete line in half too.
    cut = written.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(written[: cut + (len(written) - cut) // 2])

    resumed = run_cli(*predict_args(images, model, out, "--resume"))
    assert resumed.exit_code == 0, (resumed.stderr[-3000:], resumed.exception)
    rows = read_jsonl(out, repair=False)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)) == 300, "every path exactly once"
    assert out.read_bytes().endswith(b"\n")
    for row in rows:
        want = expected[row["path"]]
        assert {k: v for k, v in row.items() if k not in ("prob_fake", "confidence")} == {
            k: v for k, v in want.items() if k not in ("prob_fake", "confidence")
        }
        assert row["prob_fake"] == pytest.approx(want["prob_fake"], abs=1e-5)


# --- file helpers ----------------------------------------------------------------------------------


def test_atomic_output_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("writer died")
    assert target.read_text() == "old\n" and stale_temps(tmp_path) == []
    with atomic_output(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and stale_temps(tmp_path) == []


def test_stale_temps_are_removed_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / f".last.ckpt.x1{TEMP_SUFFIX}").write_bytes(b"torn")
    (tmp_path / "last.ckpt").write_bytes(b"whole")
    (tmp_path / "notes.tmp").write_bytes(b"a user's file")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [f".last.ckpt.x1{TEMP_SUFFIX}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "notes.tmp"]


def test_read_jsonl_cuts_a_torn_last_line_and_rejects_a_broken_middle(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n', "cut so the next append starts a clean line"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}')  # complete JSON but no newline: still torn
    assert read_jsonl(path, repair=False) == [{"a": 1}, {"a": 2}]
    path.write_bytes(b'{"a": 1}\n{"a"\n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2"):
        read_jsonl(path)
