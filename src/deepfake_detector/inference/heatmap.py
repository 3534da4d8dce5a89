"""Grad-CAM explanations (pytorch-grad-cam): an overlay PNG per face and a self-contained HTML page.

The map explains the face's verdict: for a face called fake, where the evidence for "fake" is;
for one called real, where the evidence for "real" is. It is computed on the last convolution
block of the PyTorch model, so heatmaps need the torch install even when ONNX Runtime scores.
"""

from __future__ import annotations

import base64
import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.data.images import resize_image
from deepfake_detector.fileio import atomic_write_bytes, atomic_write_text
from deepfake_detector.inference.annotate import annotate, safe_stem
from deepfake_detector.inference.results import Prediction
from deepfake_detector.outputs import plural
from deepfake_detector.spec import ModelSpec, preprocess_batch
from deepfake_detector.templating import html_templates

TEMPLATES = Path(__file__).parent / "templates"

MAX_PAGE_IMAGES = 500  # the page embeds its images; past this many it would get unwieldy
PAGE_IMAGE_SIDE = 480
HEATMAP_SIDE = 224


def last_conv_block(model: Any) -> Any:
    """The module Grad-CAM hooks: the last Conv2d, or its small conv-norm-activation block if it has one."""
    import torch.nn as nn

    modules = dict(model.named_modules())
    last = None
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    parent = modules.get(last.rsplit(".", 1)[0]) if "." in last else None
    if isinstance(parent, nn.Sequential) and len(parent) <= 4 and parent[0] is modules[last]:
        return parent
    return modules[last]


def explainable_copy(model: Any) -> Any:
    """A copy of the model safe for Grad-CAM hooks: in-place activations would overwrite hooked outputs."""
    clone = copy.deepcopy(model).float().eval()
    for module in clone.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    for param in clone.parameters():
        param.requires_grad_(True)
    return clone


class GradCam:
    """Grad-CAM maps in [0, 1], one per preprocessed face, for the class each face was assigned."""

    def __init__(self, model: Any):
        from pytorch_grad_cam import GradCAM

        self.model = explainable_copy(model)
        self.cam = GradCAM(model=self.model, target_layers=[last_conv_block(self.model)])

    def __call__(self, batch: np.ndarray, fake: list[bool]) -> np.ndarray:
        import torch
        from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

        targets = [BinaryClassifierOutputTarget(1 if is_fake else 0) for is_fake in fake]
        maps = self.cam(input_tensor=torch.from_numpy(batch), targets=targets)
        return np.nan_to_num(np.asarray(maps, dtype=np.float32))


def overlay(face: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The face (RGB uint8) with the map drawn over it as a JET colour overlay."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    face = resize_image(face, HEATMAP_SIDE)
    cam = resize_image(cam[..., None].repeat(3, axis=2), HEATMAP_SIDE)[..., 0]
    return show_cam_on_image(face.astype(np.float32) / 255.0, np.clip(cam, 0, 1), use_rgb=True)


@dataclass
class _PageEntry:
    prediction: Prediction
    image_uri: str = ""
    faces: list[tuple[str, str]] = field(default_factory=list)  # (face crop, heatmap) data URIs
    links: list[tuple[str, str]] = field(default_factory=list)  # a video's (what, relative path) pictures


class HeatmapWriter:
    """Writes `<n>_<stem>_face<k>.png` overlays into a folder and, at the end, `index.html`."""

    def __init__(self, model: Any, spec: ModelSpec, out_dir: str | Path):
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.grad_cam = GradCam(model)
        self.entries: list[_PageEntry] = []
        self.count = 0  # images
        self.videos = 0

    def add(self, batch: list[Any], predictions: list[Prediction]) -> None:
        """Explain one scored batch (pipeline.Prepared images and their predictions, in the same order)."""
        for prepared, prediction in zip(batch, predictions, strict=True):
            regions = prepared.regions
            index = self.count
            self.count += 1
            entry = _PageEntry(prediction)
            if regions.crops:
                fake = [face.label == "fake" for face in prediction.faces]
                cams = self.grad_cam(preprocess_batch(regions.crops, self.spec), fake)
                for k, (crop, cam, face) in enumerate(
                    zip(regions.crops, cams, prediction.faces, strict=True)
                ):
                    picture = overlay(crop, cam)
                    png = _encode(picture, ".png")
                    path = self.out_dir / f"{index:05d}_{safe_stem(prediction.path)}_face{k}.png"
                    atomic_write_bytes(path, png)
                    face.heatmap = str(path)
                    if len(self.entries) < MAX_PAGE_IMAGES:
                        entry.faces.append((_data_uri(_encode(crop, ".png"), "png"), _data_uri(png, "png")))
            if len(self.entries) < MAX_PAGE_IMAGES:
                if prepared.image is not None:
                    entry.image_uri = _data_uri(
                        _encode(annotate(prepared.image, prediction, PAGE_IMAGE_SIDE), ".jpg"), "jpeg"
                    )
                self.entries.append(entry)

    def add_video(self, prediction: Any) -> None:
        """A video's row: its verdict and links to its contact sheet and timeline (when written)."""
        self.videos += 1
        if len(self.entries) >= MAX_PAGE_IMAGES:
            return
        entry = _PageEntry(prediction)
        files = prediction.video.files if getattr(prediction, "video", None) is not None else {}
        for what in ("contact_sheet", "timeline"):
            if files.get(what):
                entry.links.append((what.replace("_", " "), os.path.relpath(files[what], self.out_dir)))
        self.entries.append(entry)

    def close(self) -> Path:
        return self.write_index()

    def write_index(self) -> Path:
        env = html_templates(TEMPLATES)
        page = env.get_template("heatmaps.html").render(
            entries=self.entries,
            total=self.count + self.videos,
            counts=describe_counts(self.count, self.videos),
            shown=len(self.entries),
            spec=self.spec,
        )
        path = self.out_dir / "index.html"
        atomic_write_text(path, page)
        return path


def _encode(rgb: np.ndarray, ext: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError(f"cannot encode image as {ext}")
    return buf.tobytes()


def _data_uri(data: bytes, kind: str) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def describe_counts(images: int, videos: int) -> str:
    """ "3 images", "1 video", "2 images, 1 video"."""
    parts = [plural(images, "image")] if images or not videos else []
    return ", ".join(parts + ([plural(videos, "video")] if videos else []))
