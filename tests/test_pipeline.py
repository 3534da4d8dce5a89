"""The one image pipeline: any source gives the same number, faces are cut by the model's crop spec
the same way whether they come as crops or inside larger photos, and arrays follow scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import shared_images
from PIL import Image

from deepfake_detector.data.crop import CropSpec, cut_regions
from deepfake_detector.data.faces import Face
from deepfake_detector.data.images import load_image
from deepfake_detector.inference import Detector
from deepfake_detector.inference.pipeline import as_rgb_array, expand_sources
from deepfake_detector.spec import ModelSpec

DFDC = shared_images("dfdc", "Test", "Fake", 2) + shared_images("dfdc", "Test", "Real", 2)
GAN = shared_images("stylegan-ffhq", "Test", "Real", 1)
if len(DFDC) < 4 or not GAN:
    pytest.fail("../shared/data (dfdc and stylegan-ffhq Test) is needed by these tests", pytrace=False)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load("default")


def test_bytes_array_pil_and_path_give_the_cli_numbers(detector: Detector) -> None:
    path = str(DFDC[0])
    array = np.asarray(Image.open(path).convert("RGB"))
    rows = detector.predict([Path(path).read_bytes(), array, Image.open(path), path])
    assert [row.error for row in rows] == ["", "", "", ""]
    cli = subprocess.run(
        [sys.executable, "-m", "deepfake_detector", "predict", path, "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=True,
    )
    (expected,) = [json.loads(line) for line in cli.stdout.splitlines() if line.strip()]
    for row in rows:
        assert row.prob_fake == pytest.approx(expected["prob_fake"], abs=1e-5)
    assert rows[0].path == "<bytes 0>" and rows[1].path == "<array 1>" and rows[3].path == path


def test_a_single_source_is_one_input_and_a_folder_expands(detector: Detector) -> None:
    assert len(detector.predict(str(DFDC[0]))) == 1  # a string is a path, not a list of characters
    folder = DFDC[0].parent
    expected = len([p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
    assert len(expand_sources([str(folder)])) == expected
    items = expand_sources([str(folder / "*.nothing")])
    assert [item.kind for item in items] == ["error"] and "no file matches" in items[0].error


def test_predict_proba_is_n_by_2_in_classes_order(detector: Detector) -> None:
    images = [load_image(p) for p in DFDC]
    proba = detector.predict_proba(images)
    assert proba.shape == (4, 2) and list(detector.classes_) == ["real", "fake"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    rows = detector.predict([str(p) for p in DFDC])
    np.testing.assert_allclose(proba[:, 1], [row.prob_fake for row in rows], atol=1e-6)
    logits = detector.decision_function(images)
    np.testing.assert_allclose(detector.spec.probability(logits), proba[:, 1], atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"\xff\xd8 not decoded", "predict_proba takes decoded RGB arrays"),
        (None, "predict_proba takes decoded RGB arrays"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((8, 8, 5), np.uint8), "HxWx3"),
    ],
)
def test_predict_proba_refuses_what_is_not_an_image(detector: Detector, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detector.predict_proba([bad])


def test_float_and_gray_arrays_are_converted() -> None:
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert as_rgb_array(gray).shape == (4, 4, 3)
    unit = np.full((2, 2, 3), 0.5, np.float32)
    assert (as_rgb_array(unit) == 128).all()


def _in_frame(crop: np.ndarray, side: int, frame: tuple[int, int] = (960, 720)) -> np.ndarray:
    """The crop at side x side inside a larger frame that continues its edges (no hard seam)."""
    import cv2

    face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    top, left = 200, 300
    return cv2.copyMakeBorder(
        face, top, frame[1] - side - top, left, frame[0] - side - left, cv2.BORDER_REPLICATE
    )


def test_a_face_inside_a_larger_photo_is_cut_like_the_crop_itself() -> None:
    spec = CropSpec(margin=0.0)
    crop = load_image(DFDC[0])
    alone = cut_regions(crop, spec, 224, "auto")
    inside = cut_regions(_in_frame(crop, 224), spec, 224, "auto")
    assert alone.face_crop and not inside.face_crop
    assert len(alone.crops) == len(inside.crops) == 1
    # The same face region, give or take a few pixels of landmark jitter; the box-anchored region of
    # older models differs far more (the detector's box grows into the frame's extension).
    difference = np.abs(alone.crops[0].astype(int) - inside.crops[0].astype(int)).mean()
    by_box = CropSpec(anchor="box")
    box_alone = cut_regions(crop, by_box, 224, "auto").crops[0].astype(int)
    box_inside = cut_regions(_in_frame(crop, 224), by_box, 224, "auto").crops[0].astype(int)
    assert difference < 12.0 and difference < 0.7 * np.abs(box_alone - box_inside).mean(), difference
    x1, y1, x2, y2 = inside.boxes[0]
    assert abs((x1 + x2) / 2 - (300 + 112)) < 30 and abs((y1 + y2) / 2 - (200 + 112)) < 40  # where it was put


def test_a_small_face_in_a_square_photo_is_not_taken_for_a_face_crop() -> None:
    face = load_image(GAN[0])
    photo = np.full((512, 512, 3), 200, np.uint8)
    photo[40:168, 200:328] = np.asarray(Image.fromarray(face).resize((128, 128)))
    regions = cut_regions(photo, CropSpec.legacy(0.3), 128, "auto")
    assert not regions.face_crop and regions.faces_found == 1
    assert regions.boxes[0] != (0, 0, 512, 512)  # its face was cut, not the whole square photo
    assert regions.note == "1 face detected"


def test_no_face_in_a_small_square_image_scores_it_whole_under_auto_only() -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    spec = CropSpec()
    auto = cut_regions(noise, spec, 64, "auto", finder=lambda image: [])
    always = cut_regions(noise, spec, 64, "always", finder=lambda image: [])
    assert len(auto.crops) == 1 and auto.boxes == [(0, 0, 224, 224)] and "no face found" in auto.note
    assert always.crops == [] and always.note == "no face found"
    large = cut_regions(np.zeros((480, 640, 3), np.uint8), spec, 64, "auto", finder=lambda image: [])
    assert large.crops == []


def test_eyes_are_levelled_when_the_spec_aligns() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    image[60:140, 98:102] = 255  # a vertical bar: after a 90 degree turn it lies horizontal
    face = Face((50, 50, 150, 150), landmarks=((100.0, 60.0), (100.0, 140.0)))  # "eyes" one above the other
    from deepfake_detector.data.crop import cut_face

    plain = cut_face(image, face, CropSpec(), 100)
    aligned = cut_face(image, face, CropSpec(align=True), 100)
    assert plain[:, 48:52].mean() > 100 and plain[48:52, 10:90].mean() < 100  # still vertical
    assert aligned[48:52, 15:85].mean() > 100  # levelled: the bar now runs across


def test_crop_spec_round_trips_through_model_json(tmp_path: Path) -> None:
    spec = ModelSpec(architecture="x", img_size=64, crop=CropSpec(margin=0.1, fill="constant"))
    spec.save(tmp_path / "model.json")
    loaded = ModelSpec.load(tmp_path / "model.json")
    assert loaded.crop == CropSpec(margin=0.1, fill="constant") and loaded.crop_spec == loaded.crop
    older = replace(spec, crop=None, face_margin=0.2)
    assert older.crop_spec == CropSpec.legacy(0.2) and older.crop_spec.crops == "whole"
    data = json.loads((tmp_path / "model.json").read_text())
    data["crop"]["colour"] = "red"
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="crop.*colour"):
        ModelSpec.load(tmp_path / "model.json")
