"""Scoring one video: sample frames, find faces, score them in batches, track, aggregate, report.

    frames (video.iter_frames, one decoded at a time)
      -> regions per frame, in worker threads: data/crop.py's cut_regions with the model's crop
         spec and the same `--faces` policy as for photos
      -> batches of face crops scored by pipeline.score_crops
      -> IoU tracks (tracking) -> per-track and per-video scores (aggregate)
      -> contact sheet + timeline (pictures), written to a folder or returned as PNG bytes

Memory does not grow with the video's length: at most a few frames are decoded ahead, a batch
of crops is scored and dropped, and the contact sheet keeps only the few most extreme faces of
each track (with a small copy of their frame). What grows is one small record per scored face.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.crop import FacesMode, cut_regions
from deepfake_detector.data.faces import Box
from deepfake_detector.data.images import DEFAULT_MAX_PIXELS
from deepfake_detector.inference.batching import batched, iter_mapped
from deepfake_detector.inference.pipeline import score_crops
from deepfake_detector.inference.results import FaceResult
from deepfake_detector.inference.video.aggregate import (
    AGGREGATES,
    MIN_TRACK_FACES,
    Aggregate,
    confident_score,
    deciding_tracks,
    mean_score,
    track_score,
)
from deepfake_detector.inference.video.frames import (
    DEFAULT_FRAMES,
    UnreadableVideo,
    iter_frames,
    probe_video,
    sample_indices,
)
from deepfake_detector.inference.video.pictures import SheetFace, render_pictures, thumbnail, write_pictures
from deepfake_detector.inference.video.results import FaceScore, TrackResult, VideoDetails, VideoPrediction
from deepfake_detector.inference.video.tracking import IouTracker
from deepfake_detector.spec import ModelSpec
from deepfake_detector.verdict import DecisionRule

SHEET_FACES = 8  # faces on the contact sheet
PROGRESS_MIN_FRAMES = 64  # fewer frames take seconds: a bar would only flicker
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
    progress: bool = False  # a bar on stderr for videos of PROGRESS_MIN_FRAMES sampled frames or more

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
    boxes: list[Box]
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
    prepare = _frame_preparer(spec, faces, options.render)

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
    advance = _frame_progress(path, len(indices)) if options.progress else None
    try:
        for chunk in batched((item for _, item in frames), batch_size):
            if advance is not None:
                advance(len(chunk))
            crops = [crop for item in chunk for crop in item.crops]  # type: ignore[attr-defined]
            probs = spec.probability(score_crops(detector.engine, spec, crops, batch_size))
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
                        per_track.setdefault(track_id, _Extremes(options.sheet_faces)).add(
                            sheet_face, position
                        )
                        pooled.add(sheet_face, position)
    finally:
        if advance is not None:
            advance(0, done=True)
    if len(details.sampled) < len(indices):
        last = details.sampled[-1][0] if details.sampled else 0
        details.warning = (
            f"decoding stopped after frame {last}: {len(details.sampled)} of {len(indices)} wanted frames "
            f"read (the header says {info.frame_count} frames; truncated or mis-indexed file)"
        )

    prediction = _verdict(label_name, details, options.aggregate, spec.rule)
    result = VideoScore(prediction)
    if not options.render:
        details.key_frames = _key_scores(details, prediction.label == "fake", threshold, options.sheet_faces)
        return result
    deciding = details.deciding_track
    source = pooled if deciding is None else per_track.get(deciding, pooled)
    _draw(result, source, details, options, spec, grad_cam, path)
    return result


def _draw(
    result: VideoScore,
    source: _Extremes,
    details: VideoDetails,
    options: VideoOptions,
    spec: ModelSpec,
    grad_cam: Any,
    path: str | Path,
) -> None:
    """The contact sheet of the faces that drove the verdict, and the timeline (written to out_dir)."""
    prediction = result.prediction
    fake = prediction.label == "fake"
    sheet_faces = source.strongest(fake, float(spec.threshold), options.sheet_faces) if details.faces else []
    details.key_frames = [face.score for face in sheet_faces]
    result.contact_sheet_png, result.timeline_png = render_pictures(
        prediction, details, sheet_faces, spec, grad_cam
    )
    if options.out_dir is not None:
        details.files = write_pictures(
            options.out_dir, str(path), result.contact_sheet_png, result.timeline_png
        )


def _frame_progress(path: str | Path, frames: int) -> Callable[..., None] | None:
    """A bar for a long video (the run's own bar counts files, and this is one file)."""
    if frames < PROGRESS_MIN_FRAMES:
        return None
    from deepfake_detector.inference.progress import make_progress

    return make_progress(frames, f"{Path(path).name}: frames")


def predict_video_file(detector: Any, path: str | Path, **kwargs: Any) -> VideoPrediction:
    """`score_video` for one input of a batch run: never raises for a bad file, it becomes an error row."""
    rule = detector.spec.rule
    try:
        return score_video(detector, path, **kwargs).prediction
    except UnreadableVideo as exc:
        reason = exc.reason
    except Exception as exc:  # one odd file must never stop a run over many (cv2.error included)
        reason = f"cannot process ({type(exc).__name__}: {exc})"
    return VideoPrediction(str(path), "", None, rule.threshold, error=reason, uncertain_band=rule.band)


def _frame_preparer(spec: ModelSpec, faces: FacesMode, keep_thumb: bool) -> Callable[[Any], _FrameFaces]:
    """Each frame's regions cut exactly as a photo's would be (data/crop.py), in a worker thread."""

    def prepare(frame: Any) -> _FrameFaces:
        regions = cut_regions(frame.image, spec.crop_spec, int(spec.img_size), faces)
        thumb, scale = thumbnail(frame.image) if keep_thumb and regions.boxes else (None, 1.0)
        return _FrameFaces(frame.index, frame.time_s, regions.boxes, regions.crops, thumb, scale)

    return prepare


def _verdict(name: str, details: VideoDetails, method: Aggregate, rule: DecisionRule) -> VideoPrediction:
    threshold = rule.threshold
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
                face_count=len(faces),
                first_s=faces[0].time_s,
                last_s=faces[-1].time_s,
                prob_mean=mean_score(probs),
                prob_confident=confident_score(probs, threshold),
                prob_fake=score,
                label=rule.label(score),
                decides=track_id in deciders or not deciders,
            )
        )
    details.tracks = tracks
    sampled = len(details.sampled)
    span = f"video {details.info.duration_s:.1f} s, {sampled} of {details.info.frame_count} frames sampled"
    if not tracks:
        return VideoPrediction(
            name,
            "",
            None,
            threshold,
            [],
            note=f"{span}; no face found",
            video=details,
            uncertain_band=rule.band,
        )
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
        name,
        rule.label(prob),
        prob,
        threshold,
        face_results,
        note=note,
        video=details,
        uncertain_band=rule.band,
    )


def _track_box(faces: list[FaceScore], track: TrackResult) -> Box:
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


def iter_video_predictions(
    detector: Any,
    paths: Iterable[str | Path],
    video: VideoOptions | None,
    *,
    faces: FacesMode,
    batch_size: int,
    workers: int,
    grad_cam: Any,
    pictures_dir: str | Path | None,
    observers: Sequence[Any] = (),
) -> Iterator[list[VideoPrediction]]:
    """Detector.iter_predict's videos: one row each; pictures go to video.out_dir, else `pictures_dir`
    (the heatmap or --save folder), and are only drawn where they are kept."""
    options = video or VideoOptions()
    if options.out_dir is None and pictures_dir is not None:
        options = replace(options, out_dir=pictures_dir)
    options = replace(options, render=options.out_dir is not None)
    for path in paths:
        prediction = predict_video_file(
            detector,
            path,
            options=options,
            faces=faces,
            batch_size=batch_size,
            workers=workers,
            grad_cam=grad_cam,
        )
        for observer in observers:
            if hasattr(observer, "add_video"):
                observer.add_video(prediction)
        yield [prediction]
