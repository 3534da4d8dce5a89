"""Reading videos: probe the header, choose the frames to sample, decode them one at a time.

Decoding is OpenCV's (its wheels bundle FFmpeg: mp4, mov, avi, webm, mkv). Frames are streamed:
skipped frames are only `grab`bed (demuxed and decoded, never converted or kept) and a long gap
between two sampled frames is crossed with a seek, so memory does not depend on the video's
length. Every failure is an `UnreadableVideo` naming the file and the reason.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.images import DEFAULT_MAX_PIXELS, UnreadableFile, check_regular_file
from deepfake_detector.filelimits import MAX_VIDEO_BYTES

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv"})
DEFAULT_FRAMES = 32
# Largest video file opened (checked with os.stat first); frames are streamed, so this bounds time, not memory.
# Between two sampled frames further apart than this, seek instead of grabbing every frame between.
SEEK_MIN_GAP = 120
_MAGIC = (
    (4, b"ftyp", "mp4/mov"),
    (0, b"\x1a\x45\xdf\xa3", "webm/mkv"),
    (8, b"AVI ", "avi"),
)
_IMAGE_BRANDS = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
)  # ISO-BMFF stills


class UnreadableVideo(UnreadableFile):
    """A video that cannot be decoded or is refused; carries the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says (frame_count is exact when it had to be counted)."""

    width: int
    height: int
    fps: float
    frame_count: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 3),
            "frame_count": self.frame_count,
            "duration_s": round(self.duration_s, 3),
            "codec": self.codec,
        }


@dataclass
class Frame:
    """One decoded frame: its number in the video, its time in seconds, the RGB uint8 pixels."""

    index: int
    time_s: float
    image: np.ndarray


def is_video_path(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


def sniff_video(head: bytes) -> str | None:
    """The container family from a file's first bytes (mp4/mov, webm/mkv, avi), or None."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return None if magic == b"ftyp" and head[8:12] in _IMAGE_BRANDS else name
    return None


def sample_indices(frame_count: int, frames: int | None = None, every: int | None = None) -> list[int]:
    """Frame numbers to score: `every` k-th frame from the first, or `frames` spread uniformly
    (the middle frame of each of `frames` equal segments, so fades at either end are avoided).
    All frames when the video has no more than `frames`."""
    if every is not None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        return list(range(0, frame_count, every))
    n = DEFAULT_FRAMES if frames is None else frames
    if n < 1:
        raise ValueError(f"frames must be at least 1, got {n}")
    if frame_count <= n:
        return list(range(frame_count))
    return [min(frame_count - 1, int((i + 0.5) * frame_count / n)) for i in range(n)]


def _cv2() -> Any:
    # FFmpeg's own messages about a broken file ("moov atom not found") would only repeat, less
    # clearly, the per-file error reported here; set OPENCV_FFMPEG_LOGLEVEL to see them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    return cv2


def _check_file(path: str) -> None:
    """A regular, non-empty, readable file of at most MAX_VIDEO_BYTES (stat only: a FIFO or a
    device is never opened, by OpenCV or here)."""
    size = check_regular_file(path, MAX_VIDEO_BYTES, error=UnreadableVideo, what="a video")
    if size == 0:
        raise UnreadableVideo(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise UnreadableVideo(path, "permission denied")


def _open_capture(path: str) -> Any:
    cv2 = _cv2()
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        with open(path, "rb") as fh:
            head = fh.read(64)
        kind = sniff_video(head)
        why = (
            f"broken or truncated {kind} video (FFmpeg cannot open it)"
            if kind
            else "not a video OpenCV/FFmpeg can open (unknown format or broken header)"
        )
        raise UnreadableVideo(path, why)
    return cap


def _fourcc(cap: Any) -> str:
    code = int(cap.get(_cv2().CAP_PROP_FOURCC))
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ") if text.isprintable() else ""


def probe_video(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_seconds: float | None = None,
) -> VideoInfo:
    """Header facts of a video file. The frame count is counted by grabbing when the header
    lacks it (some webm/mkv files). Raises UnreadableVideo for a missing, empty, unopenable,
    frameless, oversized-frame or (with max_seconds) too long video."""
    path = str(path)
    _check_file(path)
    cv2 = _cv2()
    cap = _open_capture(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        codec = _fourcc(cap)
        if width < 1 or height < 1:
            raise UnreadableVideo(path, f"invalid frame size {width}x{height}")
        if width * height > max_pixels:
            raise UnreadableVideo(
                path, f"frames too large: {width}x{height} exceeds the limit of {max_pixels:,} pixels"
            )
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 0.0
        if max_seconds is not None and fps > 0 and count > 0 and count / fps > max_seconds:
            raise UnreadableVideo(path, _too_long(count / fps, max_seconds))
        if count <= 0:
            count = _count_frames(cap, path, fps, max_seconds)
    finally:
        cap.release()
    if count <= 0:
        raise UnreadableVideo(path, "the video has no frames")
    return VideoInfo(width, height, fps, count, codec)


def _count_frames(cap: Any, path: str, fps: float, max_seconds: float | None) -> int:
    count = 0
    limit = int(max_seconds * fps) + 1 if max_seconds is not None and fps > 0 else None
    while cap.grab():
        count += 1
        if limit is not None and count > limit:
            raise UnreadableVideo(path, _too_long(count / fps, max_seconds or 0.0) + " (counted so far)")
    return count


def _too_long(seconds: float, limit: float) -> str:
    return f"video too long: {seconds:.1f} s, the limit is {limit:g} s"


def iter_frames(path: str | Path, info: VideoInfo, indices: list[int]) -> Iterator[Frame]:
    """The frames at `indices` (increasing), decoded one at a time, as RGB uint8.

    Stops early when the stream ends before an index (a header that overstates the count, a
    truncated file); raises UnreadableVideo when not even the first wanted frame decodes.
    """
    path = str(path)
    cv2 = _cv2()
    cap = _open_capture(path)
    try:
        position = 0  # number of the frame the next grab() returns
        yielded = 0
        can_seek = True
        for index in indices:
            if index < position:
                continue
            if can_seek and index - position > SEEK_MIN_GAP:
                landed = _seek(cap, index)
                if landed is not None and position <= landed <= index:
                    position = landed
                else:  # position unknown: start again from the top and only grab from now on
                    can_seek = False
                    cap.release()
                    cap = _open_capture(path)
                    position = 0
            while position < index:
                if not cap.grab():
                    break
                position += 1
            ok = position == index and cap.grab()
            image = cap.retrieve()[1] if ok else None
            if image is None:
                if yielded == 0:
                    raise UnreadableVideo(
                        path, f"no frame could be decoded (stream ends or is corrupt before frame {index})"
                    )
                return
            position += 1
            yielded += 1
            time_s = index / info.fps if info.fps > 0 else float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            yield Frame(index, time_s, _to_rgb(image))
    finally:
        cap.release()


def _seek(cap: Any, index: int) -> int | None:
    """Seek towards frame `index`; the number of the frame the next grab() returns, None if it failed."""
    cv2 = _cv2()
    if not cap.set(cv2.CAP_PROP_POS_FRAMES, index):
        return None
    landed = cap.get(cv2.CAP_PROP_POS_FRAMES)
    return int(round(landed)) if landed >= 0 else None


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@contextmanager
def video_file(source: str | Path | bytes, suffix: str = ".mp4") -> Iterator[str]:
    """A path to read the video from: the path itself, or for bytes (an upload) a private
    temporary file (mode 0600) that is deleted on exit. OpenCV's FFmpeg reader needs a file."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        yield str(source)
        return
    fd, name = tempfile.mkstemp(prefix="deepfake-detector-video-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(source)
        yield name
    finally:
        with suppress(FileNotFoundError):
            os.unlink(name)


def looks_like_video(content_type: str, head: bytes) -> bool:
    """An upload that is a video: sent as video/*, or starting like a video container."""
    return content_type.lower().startswith("video/") or sniff_video(head) is not None
