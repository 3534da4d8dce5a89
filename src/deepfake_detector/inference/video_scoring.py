"""Scoring one video: sample frames, find faces, score them in batches, track, aggregate, report.

    frames (video.iter_frames, one decoded at a time)
      -> faces per frame, in worker threads (faces.detect_faces + crop_face, or the whole frame
         when the video is shaped like a face crop, the same `--faces` policy as for photos)
      -> batches of face crops scored by the Detector
      -> IoU tracks (tracking) -> per-track and per-video scores (video_aggregate)
      -> contact sheet + timeline (video_report), written to a folder or returned as PNG bytes

Memory does not grow with the video's length: at most a few frames are decoded ahead, a batch
of crops is scored and dropped, and the contact sheet keeps only the few most extreme faces of
each track (with a small copy of their frame). What grows is one small record per scored face.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepfake_detector.data.images import DEFAULT_MAX_PIXELS, resize_image
from deepfake_detector.fileio import atomic_write_bytes
from deepfake_detector.inference import faces as face_finder
from deepfake_detector.inference.batching import batched, iter_mapped
from deepfake_detector.inference.results import FaceResult, label_for
from deepfake_detector.inference.tracking import IouTracker
from deepfake_detector.inference.video import (
    DEFAULT_FRAMES,
    UnreadableVideo,
    iter_frames,
    probe_video,
    sample_indices,
)
from deepfake_detector.inference.video_aggregate import (
    AGGREGATES,
    MIN_TRACK_FACES,
    Aggregate,
    confident_score,
    deciding_tracks,
    mean_score,
    track_score,
)
from deepfake_detector.inference.video_report import (
    SheetFace,
    contact_sheet,
    encode_png,
    thumbnail,
    timeline_png,
)
from deepfake_detector.inference.video_results import FaceScore, TrackResult, VideoDetails, VideoPrediction

FacesMode = Literal["auto", "always", "never"]
SHEET_FACES = 8  # faces on the contact sheet
FRAMES_AHEAD_PER_WORKER = 2  # decoded frames waiting for face detection, per worker thread


@dataclass
class VideoOptions:
    """How videos are sampled, aggregated and reported (the `predict` video options)."""

    frames: int | None = None  # spread uniformly over the video (DEFAULT_FRAMES when every is None too)
    every: int | None = None  # every k-th frame instead
    aggregate: Aggregate = "confident"
    out_dir: str | Path | None = None  # contact sheet and timeline PNGs go here when set
    sheet_faces: int = SHEET_FACES
    max_seconds: float | None = None  # refuse longer videos (the service's limit)
    max_pixels: int = DEFAULT_MAX_PIXELS  # per frame
    render: bool = True  # build the PNGs (written to out_dir when set, else returned in memory)

    def __post_init__(self) -> None:
        if self.frames is not None and self.every is not None:
            raise ValueError("give either frames (uniform sampling) or every (every k-th frame), not both")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        if self.sheet_faces < 1:
            raise ValueError(f"sheet_faces must be at least 1, got {self.sheet_faces}")

    def sampling(self) -> dict[str, Any]:
        if self.every is not None:
            return {"mode": "every", "every": self.every}
        return {"mode": "uniform", "frames": self.frames or DEFAULT_FRAMES}


@dataclass
class VideoScore:
    """A scored video and, when rendered, its two pictures as PNG bytes."""

    prediction: VideoPrediction
    contact_sheet_png: bytes | None = None
    timeline_png: bytes | None = None


@dataclass
class _FrameFaces:
    index: int
    time_s: float
    boxes: list[face_finder.Box]
    crops: list[np.ndarray]
    thumb: np.ndarray | None
    scale: float


@dataclass
class _Extremes:
    """The `keep` highest- and lowest-scoring faces seen (bounded heaps), for the contact sheet."""

    keep: int
    high: list[tuple[float, int, SheetFace]] = field(default_factory=list)
    low: list[tuple[float, int, SheetFace]] = field(default_factory=list)

    def add(self, face: SheetFace, order: int) -> None:
        p = face.score.prob_fake
        for heap, key in ((self.high, p), (self.low, -p)):
            if len(heap) < self.keep:
                heapq.heappush(heap, (key, order, face))
            elif key > heap[0][0]:
                heapq.heapreplace(heap, (key, order, face))

    def strongest(self, fake: bool, threshold: float, n: int) -> list[SheetFace]:
        """Up to n faces on the verdict's side of the threshold that support it most (highest p for
        fake, lowest for real), in time order."""
        heap = self.high if fake else self.low
        best = sorted(heap, key=lambda entry: (-entry[0], entry[1]))[:n]
        agree = [e for e in best if (e[2].score.prob_fake >= threshold) == fake]
        return [face for _, _, face in sorted(agree, key=lambda entry: entry[1])]


def score_video(
    detector: Any,
    path: str | Path,
    *,
    name: str | None = None,
    options: VideoOptions | None = None,
    faces: FacesMode = "auto",
    batch_size: int = 64,
    workers: int = 2,
    grad_cam: Any = None,
) -> VideoScore:
    """Score one video file with a Detector. Raises UnreadableVideo for a bad or refused video.

    `name` labels the result (default: the path); `grad_cam` (a heatmap.GradCam) adds heatmaps
    to the contact sheet.
    """
    options = options or VideoOptions()
    label_name = name or str(path)
    spec = detector.spec
    threshold = float(spec.threshold)
    info = probe_video(path, max_pixels=options.max_pixels, max_seconds=options.max_seconds)
    indices = sample_indices(info.frame_count, options.frames, options.every)
    whole = faces == "never" or (
        faces == "auto" and face_finder.looks_like_face_crop(info.width, info.height)
    )
    prepare = _frame_preparer(int(spec.img_size), float(spec.face_margin), whole, options.render)

    details = VideoDetails(info=info, sampling=options.sampling(), aggregate=options.aggregate)
    tracker = IouTracker()
    per_track: dict[int, _Extremes] = {}
    pooled = _Extremes(options.sheet_faces)
    order = itertools.count()
    frames = iter_mapped(
        iter_frames(path, info, indices),
        prepare,
        workers=workers,
        read_ahead=FRAMES_AHEAD_PER_WORKER * max(1, workers),
    )
    for chunk in batched((item for _, item in frames), batch_size):
        crops = [crop for item in chunk for crop in item.crops]  # type: ignore[attr-defined]
        probs = detector.predict_proba(crops, batch_size=batch_size) if crops else np.zeros(0)
        cursor = 0
        for item in chunk:
            assert isinstance(item, _FrameFaces)
            details.sampled.append((item.index, item.time_s))
            ids = tracker.update(item.boxes)
            for box, crop, track_id in zip(item.boxes, item.crops, ids, strict=True):
                score = FaceScore(item.index, item.time_s, track_id, box, float(probs[cursor]))
                cursor += 1
                details.faces.append(score)
                if item.thumb is not None:
                    sheet_face = SheetFace(score, crop, item.thumb, item.scale)
                    position = next(order)
                    per_track.setdefault(track_id, _Extremes(options.sheet_faces)).add(sheet_face, position)
                    pooled.add(sheet_face, position)
    if len(details.sampled) < len(indices):
        last = details.sampled[-1][0] if details.sampled else 0
        details.warning = (
            f"decoding stopped after frame {last}: {len(details.sampled)} of {len(indices)} wanted frames "
            f"read (the header says {info.frame_count} frames; truncated or mis-indexed file)"
        )

    prediction = _verdict(label_name, details, options.aggregate, threshold)
    result = VideoScore(prediction)
    if options.render:
        deciding = details.deciding_track
        source = pooled if deciding is None else per_track.get(deciding, pooled)
        sheet_faces = (
            source.strongest(prediction.label == "fake", threshold, options.sheet_faces)
            if details.faces
            else []
        )
        details.key_frames = [face.score for face in sheet_faces]
        heatmaps = _heatmaps(grad_cam, sheet_faces, spec, threshold) if grad_cam is not None else None
        title = _title(label_name, prediction, details)
        result.contact_sheet_png = encode_png(contact_sheet(title, sheet_faces, threshold, heatmaps))
        result.timeline_png = timeline_png(
            title, details.sampled, details.faces, details.tracks, threshold, info.duration_s
        )
        if options.out_dir is not None:
            sheet_path, timeline_path = report_paths(options.out_dir, str(path))
            atomic_write_bytes(sheet_path, result.contact_sheet_png)
            atomic_write_bytes(timeline_path, result.timeline_png)
            details.files = {"contact_sheet": str(sheet_path), "timeline": str(timeline_path)}
    else:
        details.key_frames = _key_scores(details, prediction.label == "fake", threshold, options.sheet_faces)
    return result


def predict_video_file(detector: Any, path: str | Path, **kwargs: Any) -> VideoPrediction:
    """`score_video` for one input of a batch run: never raises for a bad file, it becomes an error row."""
    threshold = float(detector.spec.threshold)
    try:
        return score_video(detector, path, **kwargs).prediction
    except UnreadableVideo as exc:
        return VideoPrediction(str(path), "", None, threshold, error=exc.reason)
    except Exception as exc:  # one odd file must never stop a run over many (cv2.error included)
        return VideoPrediction(
            str(path), "", None, threshold, error=f"cannot process ({type(exc).__name__}: {exc})"
        )


def report_paths(out_dir: str | Path, path: str) -> tuple[Path, Path]:
    """`<stem>-<8 hex of the path's hash>.frames.png` and `.timeline.png` (two clip.mp4 in different
    folders do not collide, and a rerun overwrites the same files)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60] or "video"
    resolved = str(Path(path).resolve()).encode("utf-8", "surrogateescape")  # non-UTF-8 names too
    digest = hashlib.sha1(resolved).hexdigest()[:8]
    folder = Path(out_dir)
    return folder / f"{stem}-{digest}.frames.png", folder / f"{stem}-{digest}.timeline.png"


def _frame_preparer(size: int, margin: float, whole: bool, keep_thumb: bool) -> Callable[[Any], _FrameFaces]:
    def prepare(frame: Any) -> _FrameFaces:
        image = frame.image
        height, width = image.shape[:2]
        if whole:
            boxes: list[face_finder.Box] = [(0, 0, width, height)]
            crops = [np.ascontiguousarray(resize_image(image, size))]
        else:
            boxes = face_finder.detect_faces(image)
            crops = [face_finder.crop_face(image, box, margin, size) for box in boxes]
        thumb, scale = thumbnail(image) if keep_thumb and boxes else (None, 1.0)
        return _FrameFaces(frame.index, frame.time_s, boxes, crops, thumb, scale)

    return prepare


def _verdict(name: str, details: VideoDetails, method: Aggregate, threshold: float) -> VideoPrediction:
    by_track: dict[int, list[FaceScore]] = {}
    for face in details.faces:
        by_track.setdefault(face.track, []).append(face)
    deciders = set(deciding_tracks({t: len(f) for t, f in by_track.items()}))
    tracks: list[TrackResult] = []
    for track_id, faces in sorted(by_track.items()):
        probs = [f.prob_fake for f in faces]
        score = track_score(probs, method, threshold)
        tracks.append(
            TrackResult(
                id=track_id,
                faces=len(faces),
                first_s=faces[0].time_s,
                last_s=faces[-1].time_s,
                prob_mean=mean_score(probs),
                prob_confident=confident_score(probs, threshold),
                prob_fake=score,
                label=label_for(score, threshold),
                decides=track_id in deciders or not deciders,
            )
        )
    details.tracks = tracks
    sampled = len(details.sampled)
    span = f"video {details.info.duration_s:.1f} s, {sampled} of {details.info.frame_count} frames sampled"
    if not tracks:
        return VideoPrediction(name, "", None, threshold, [], note=f"{span}; no face found", video=details)
    how = "confident frames" if method == "confident" else "mean"
    if deciders:
        top = max((t for t in tracks if t.decides), key=lambda t: t.prob_fake)
        details.deciding_track = top.id
        prob = top.prob_fake
        why = f"verdict from track {top.id} ({how})"
    else:
        details.pooled = True
        prob = track_score([f.prob_fake for f in details.faces], method, threshold)
        why = f"no track seen in {MIN_TRACK_FACES}+ sampled frames, so all {len(details.faces)} faces pooled ({how})"
    count = len(tracks)
    note = f"{span}; {count} face track{'s' if count != 1 else ''}; {why}"
    if details.warning:
        note += f"; {details.warning}"
    face_results = [
        FaceResult(box=_track_box(details.faces, t), prob_fake=t.prob_fake, label=t.label) for t in tracks
    ]
    return VideoPrediction(
        name, label_for(prob, threshold), prob, threshold, face_results, note=note, video=details
    )


def _track_box(faces: list[FaceScore], track: TrackResult) -> face_finder.Box:
    """The box of the track's face that agrees most with the track's verdict."""
    own = [f for f in faces if f.track == track.id]
    pick = (
        max(own, key=lambda f: f.prob_fake) if track.label == "fake" else min(own, key=lambda f: f.prob_fake)
    )
    return pick.box


def _key_scores(details: VideoDetails, fake: bool, threshold: float, n: int) -> list[FaceScore]:
    """What the contact sheet would show, without pictures (see _Extremes.strongest)."""
    own = [f for f in details.faces if details.deciding_track is None or f.track == details.deciding_track]
    agree = [f for f in own if (f.prob_fake >= threshold) == fake]
    best = sorted(agree, key=lambda f: -f.prob_fake if fake else f.prob_fake)[:n]
    return sorted(best, key=lambda f: f.frame)


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
