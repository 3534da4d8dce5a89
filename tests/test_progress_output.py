"""What long runs print: `train` one line per epoch counted from 1 and none of Lightning's tips or
start-up lines; a long video a bar of its frames (a short one none)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from service_helpers import dfdc_image
from test_training import make_dataset, train_cmd
from test_video import write_video

from deepfake_detector import Detector
from deepfake_detector.data.images import load_image
from deepfake_detector.inference.video import scoring
from deepfake_detector.inference.video.scoring import PROGRESS_MIN_FRAMES, VideoOptions, score_video


def test_train_prints_an_epoch_line_each_counted_from_one(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", per_class=8)
    command = [arg for arg in train_cmd(data, tmp_path / "run", "--epochs", "2") if arg != "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("Epoch ")]
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"], done.stderr
    assert all(" val loss " in line and " AUC " in line for line in lines)
    for noise in ("Tip:", "GPU available", "TPU available", "LeafSpec", "`Trainer.fit` stopped", "Epoch 0"):
        assert noise not in done.stderr, noise


def test_a_long_video_shows_a_bar_of_its_frames(tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple[int, bool]] = []

    def fake_progress(total: int, description: str = "") -> object:
        calls.append((total, False))
        assert description.endswith(": frames")
        return lambda n, done=False: calls.append((n, done))

    monkeypatch.setattr("deepfake_detector.inference.progress.make_progress", fake_progress)
    face = load_image(dfdc_image("Fake", 0))
    frames = [np.roll(face, k, axis=1) for k in range(PROGRESS_MIN_FRAMES)]
    video = write_video(tmp_path / "long.avi", frames)
    detector = Detector.load("fast")
    every = VideoOptions(every=1, progress=True, render=False)
    score_video(detector, video, options=every)
    assert calls[0] == (PROGRESS_MIN_FRAMES, False) and calls[-1] == (0, True)
    assert sum(n for n, done in calls[1:-1]) == PROGRESS_MIN_FRAMES  # every frame counted once
    calls.clear()
    score_video(detector, video, options=VideoOptions(frames=8, progress=True, render=False))
    assert calls == [] and scoring._frame_progress(video, PROGRESS_MIN_FRAMES - 1) is None
