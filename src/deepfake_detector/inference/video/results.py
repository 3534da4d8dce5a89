"""What a prediction says about one video: the usual row (one per video) plus frames, tracks and timeline.

`VideoPrediction` is a `Prediction`, so every writer (table, CSV, JSON, JSONL) takes it as it is:
its `faces` are the face tracks (one FaceResult each, the box of the track's most decisive face),
so the `faces` column counts tracks; `to_dict` adds a `video` object with the details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepfake_detector.data.faces import Box
from deepfake_detector.inference.results import Prediction
from deepfake_detector.inference.video.frames import VideoInfo


@dataclass
class FaceScore:
    """One face in one sampled frame."""

    frame: int
    time_s: float
    track: int
    box: Box
    prob_fake: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "time_s": round(self.time_s, 3),
            "track": self.track,
            "box": [int(v) for v in self.box],
            "prob_fake": round(float(self.prob_fake), 6),
        }


@dataclass
class TrackResult:
    """One person followed across the sampled frames."""

    id: int
    face_count: int  # sampled frames in which this face was found
    first_s: float
    last_s: float
    prob_mean: float
    prob_confident: float
    prob_fake: float  # the aggregate the verdict uses
    label: str
    decides: bool  # long enough to count towards the verdict (see video/aggregate.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "face_count": self.face_count,
            "first_s": round(self.first_s, 3),
            "last_s": round(self.last_s, 3),
            "prob_mean": round(self.prob_mean, 6),
            "prob_confident": round(self.prob_confident, 6),
            "prob_fake": round(self.prob_fake, 6),
            "label": self.label,
            "decides": self.decides,
        }


@dataclass
class VideoDetails:
    info: VideoInfo
    sampling: dict[str, Any]  # {"mode": "uniform", "frames": N} or {"mode": "every", "every": K}
    aggregate: str
    sampled: list[tuple[int, float]] = field(default_factory=list)  # (frame, time_s) of each decoded sample
    faces: list[FaceScore] = field(default_factory=list)
    tracks: list[TrackResult] = field(default_factory=list)
    key_frames: list[FaceScore] = field(default_factory=list)  # the faces that drove the verdict
    deciding_track: int | None = None  # None: no face, or the faces were pooled
    pooled: bool = False
    files: dict[str, str | None] = field(default_factory=lambda: {"contact_sheet": None, "timeline": None})
    warning: str = ""

    def timeline(self) -> list[dict[str, Any]]:
        """One point per sampled frame: time, the highest face probability (None without a face), faces."""
        by_frame: dict[int, list[FaceScore]] = {}
        for face in self.faces:
            by_frame.setdefault(face.frame, []).append(face)
        points = []
        for frame, time_s in self.sampled:
            faces = by_frame.get(frame, [])
            points.append(
                {
                    "frame": frame,
                    "time_s": round(time_s, 3),
                    "prob_fake": round(max(f.prob_fake for f in faces), 6) if faces else None,
                    "faces": [{"track": f.track, "prob_fake": round(f.prob_fake, 6)} for f in faces],
                }
            )
        return points

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            "sampling": self.sampling,
            "sampled_frames": len(self.sampled),
            "frames_with_faces": len({face.frame for face in self.faces}),
            "aggregate": self.aggregate,
            "deciding_track": self.deciding_track,
            "pooled": self.pooled,
            "tracks": [track.to_dict() for track in self.tracks],
            "frames": [face.to_dict() for face in self.key_frames],
            "timeline": self.timeline(),
            "files": dict(self.files),
            "warning": self.warning,
        }


@dataclass
class VideoPrediction(Prediction):
    """The verdict on one video (one row), with `video` holding the per-frame and per-track details."""

    video: VideoDetails | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["video"] = None if self.video is None else self.video.to_dict()
        return data
