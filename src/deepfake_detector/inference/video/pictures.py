"""The two pictures of a video verdict: a contact sheet of the frames that drove it, and a timeline plot.

Contact sheet: one tile per key face, in time order: the frame (face boxed, red fake / green
real), the face crop the model scored and, when asked, its Grad-CAM overlay; captioned with the
time, track and probability. Timeline: the probability of fake of each track over time, with the
decision threshold. Both are PNG bytes, built in memory (matplotlib's Agg canvas, no pyplot
state, so it is safe from worker threads).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.images import resize_image
from deepfake_detector.fileio import atomic_write_bytes
from deepfake_detector.inference.video.results import FaceScore, TrackResult, VideoDetails, VideoPrediction

THUMB_SIDE = 240  # the frame is shrunk to fit a square of this side
FACE_SIDE = THUMB_SIDE // 2
CAPTION_H = 22
HEADER_H = 34
COLUMNS = 4
MIN_WIDTH = 760  # room for the title line
PAD = 6
BACKGROUND = (245, 245, 245)
FAKE_RGB = (220, 40, 40)
REAL_RGB = (40, 160, 60)
TEXT_RGB = (20, 20, 20)


@dataclass
class SheetFace:
    """A key face kept for the contact sheet: its score, the crop scored and a small copy of its frame."""

    score: FaceScore
    crop: np.ndarray  # model input size, RGB uint8
    thumb: np.ndarray  # the whole frame shrunk to fit THUMB_SIDE, RGB uint8
    scale: float  # thumb pixels per frame pixel


def thumbnail(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """The frame shrunk (never enlarged) to fit THUMB_SIDE x THUMB_SIDE, and the scale used."""
    height, width = frame.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(resize_image(frame, size)), scale


def contact_sheet(
    title: str,
    faces: Sequence[SheetFace],
    threshold: float,
    heatmaps: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """The sheet as an RGB uint8 image (a header line and one tile per face)."""
    import cv2

    columns = max(1, min(COLUMNS, len(faces)))
    rows = max(1, -(-len(faces) // columns))
    # Frames sit top-left in their tile; the column beside them holds the face and its heatmap.
    picture_h = max([FACE_SIDE * (2 if heatmaps else 1)] + [face.thumb.shape[0] for face in faces])
    tile_w, tile_h = THUMB_SIDE + FACE_SIDE + PAD, picture_h + CAPTION_H
    width = max(PAD + columns * (tile_w + PAD), MIN_WIDTH)
    height = HEADER_H + rows * (tile_h + PAD) + PAD
    sheet = np.full((height, width, 3), BACKGROUND, np.uint8)
    _text(sheet, title, (PAD, 23), 0.6, TEXT_RGB)
    if not faces:
        _text(sheet, "no face found in the sampled frames", (PAD, HEADER_H + 40), 0.55, TEXT_RGB)
    for k, face in enumerate(faces):
        x0 = PAD + (k % columns) * (tile_w + PAD)
        y0 = HEADER_H + (k // columns) * (tile_h + PAD)
        colour = FAKE_RGB if face.score.prob_fake >= threshold else REAL_RGB
        thumb = face.thumb.copy()
        x1, y1, x2, y2 = (round(v * face.scale) for v in face.score.box)
        cv2.rectangle(thumb, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, 2)
        th, tw = thumb.shape[:2]
        sheet[y0 : y0 + th, x0 : x0 + tw] = thumb
        fx = x0 + THUMB_SIDE + PAD
        sheet[y0 : y0 + FACE_SIDE, fx : fx + FACE_SIDE] = resize_image(face.crop, FACE_SIDE)
        if heatmaps is not None and k < len(heatmaps):
            sheet[y0 + FACE_SIDE : y0 + 2 * FACE_SIDE, fx : fx + FACE_SIDE] = resize_image(
                heatmaps[k], FACE_SIDE
            )
        caption = (
            f"{_clock(face.score.time_s)}  frame {face.score.frame}  track {face.score.track}  "
            f"p={face.score.prob_fake:.2f}"
        )
        _text(sheet, caption, (x0, y0 + picture_h + 16), 0.42, colour)
    return sheet


def timeline_png(
    title: str,
    sampled: Sequence[tuple[int, float]],
    faces: Sequence[FaceScore],
    tracks: Sequence[TrackResult],
    threshold: float,
    duration_s: float,
) -> bytes:
    """A PNG plot of each track's probability of fake against time, threshold dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    end = max([duration_s] + [t for _, t in sampled]) or 1.0
    ax.axhspan(threshold, 1.0, color=np.asarray(FAKE_RGB) / 255.0, alpha=0.07, lw=0)
    ax.axhline(threshold, color="0.3", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    by_track: dict[int, list[FaceScore]] = {}
    for face in faces:
        by_track.setdefault(face.track, []).append(face)
    for track in tracks:
        points = sorted(by_track.get(track.id, []), key=lambda f: f.frame)
        style = "-" if track.decides else ":"
        ax.plot(
            [f.time_s for f in points],
            [f.prob_fake for f in points],
            style,
            marker="o",
            ms=3,
            lw=1.5,
            label=f"track {track.id}: {track.label} {track.prob_fake:.2f} ({track.face_count} faces)",
        )
    with_face = {f.frame for f in faces}
    without = [t for frame, t in sampled if frame not in with_face]
    if without:
        ax.plot(without, [0.0] * len(without), "x", color="0.5", ms=4, label="no face")
    ax.set_xlim(0, end)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def encode_png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("cannot encode the contact sheet as PNG")
    return buffer.tobytes()


def _text(
    image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour: tuple[int, int, int]
) -> None:
    import cv2

    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:05.2f}"


def render_pictures(
    prediction: VideoPrediction,
    details: VideoDetails,
    faces: list[SheetFace],
    spec: Any,
    grad_cam: Any = None,
) -> tuple[bytes, bytes]:
    """The contact sheet (the key faces, with Grad-CAM overlays when an explainer is given) and the
    timeline of a scored video, as PNG bytes."""
    threshold = float(spec.threshold)
    heatmaps = _heatmaps(grad_cam, faces, spec, threshold) if grad_cam is not None else None
    title = _title(prediction.path, prediction, details)
    sheet = encode_png(contact_sheet(title, faces, threshold, heatmaps))
    timeline = timeline_png(
        title, details.sampled, details.faces, details.tracks, threshold, details.info.duration_s
    )
    return sheet, timeline


def write_pictures(out_dir: str | Path, path: str, sheet: bytes, timeline: bytes) -> dict[str, str]:
    """Both pictures written atomically under out_dir (see report_paths); their paths by kind."""
    sheet_path, timeline_path = report_paths(out_dir, path)
    atomic_write_bytes(sheet_path, sheet)
    atomic_write_bytes(timeline_path, timeline)
    return {"contact_sheet": str(sheet_path), "timeline": str(timeline_path)}


def report_paths(out_dir: str | Path, path: str) -> tuple[Path, Path]:
    """`<stem>-<8 hex of the path's hash>.frames.png` and `.timeline.png` (two clip.mp4 in different
    folders do not collide, and a rerun overwrites the same files)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60] or "video"
    resolved = str(Path(path).resolve()).encode("utf-8", "surrogateescape")  # non-UTF-8 names too
    digest = hashlib.sha1(resolved).hexdigest()[:8]
    folder = Path(out_dir)
    return folder / f"{stem}-{digest}.frames.png", folder / f"{stem}-{digest}.timeline.png"


def _heatmaps(grad_cam: Any, faces: list[SheetFace], spec: Any, threshold: float) -> list[np.ndarray] | None:
    """Grad-CAM overlays of the key faces; None when the explainer gave none (it reports why itself)."""
    if not faces:
        return []
    from deepfake_detector.inference.heatmap import overlay
    from deepfake_detector.spec import preprocess_batch

    fake = [face.score.prob_fake >= threshold for face in faces]
    cams = grad_cam(preprocess_batch([face.crop for face in faces], spec), fake)
    if cams is None:
        return None
    return [overlay(face.crop, cam) for face, cam in zip(faces, cams, strict=True)]


def _title(name: str, prediction: VideoPrediction, details: VideoDetails) -> str:
    shown = Path(name).name
    if prediction.prob_fake is None:
        return f"{shown}: no face found"
    source = "all faces pooled" if details.pooled else f"track {details.deciding_track}"
    return f"{shown}: {prediction.label.upper()} p={prediction.prob_fake:.2f} ({details.aggregate}, {source})"
