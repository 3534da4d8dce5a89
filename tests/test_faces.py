"""Faces: a group photo gives one row per face, a faceless photo says so, regions follow the crop
spec, and Grad-CAM heatmaps are written per face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inference_helpers import assert_verdict_consistent, make_bundle, shared_images
from PIL import Image

from deepfake_detector.data.crop import CropSpec, crop_shaped, cut_face, region_box, shifted_region
from deepfake_detector.data.faces import Face, detect_faces
from deepfake_detector.data.images import load_image
from deepfake_detector.inference import Detector

# Two shared faces in which the detector finds exactly one face each (some FFHQ photos show a second
# person at the edge), so that a canvas with both holds exactly two faces.
FACES = [
    p for p in shared_images("stylegan-ffhq", "Test", "Real", 12) if len(detect_faces(load_image(p))) == 1
][:2]
needs_faces = pytest.mark.skipif(len(FACES) < 2, reason="shared stylegan-ffhq images not available")
PASTE_AT = ((80, 170), (620, 150))  # (x, y) of each 256x256 face on the canvas


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    return Detector.load(make_bundle(tmp_path_factory.mktemp("model")), engine="torch")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    out = {}
    noise = rng.integers(0, 256, size=(500, 760, 3), dtype=np.uint8)
    out["noise"] = folder / "noise.png"
    Image.fromarray(noise).save(out["noise"])
    out["blank"] = folder / "blank.jpg"
    Image.fromarray(np.full((480, 720, 3), 128, np.uint8)).save(out["blank"])
    if len(FACES) >= 2:
        canvas = np.full((600, 1000, 3), (170, 180, 190), np.uint8)
        for face, (x, y) in zip(FACES, PASTE_AT, strict=True):
            canvas[y : y + 256, x : x + 256] = load_image(face)
        out["group"] = folder / "group.jpg"
        Image.fromarray(canvas).save(out["group"], quality=92)
    return out


@needs_faces
def test_group_photo_gives_one_row_per_face(detector: Detector, photos: dict[str, Path]) -> None:
    for mode in ("auto", "always"):
        (row,) = detector.predict([photos["group"]], faces=mode)  # type: ignore[arg-type]
        assert row.error == "" and len(row.faces) == 2, row
        assert row.note == "2 faces detected"
        for face, (x, y) in zip(row.faces, PASTE_AT, strict=True):  # boxes sorted left to right
            x1, y1, x2, y2 = face.box
            assert x <= x1 < x2 <= x + 256 and y <= y1 < y2 <= y + 256, (face.box, (x, y))
            assert (x2 - x1) * (y2 - y1) > 0.15 * 256 * 256  # a face, not a speck
        assert row.prob_fake == max(face.prob_fake for face in row.faces)
        assert_verdict_consistent(row.to_dict())

    # Each face row scores exactly that face's region cut by the model's crop spec.
    image = load_image(photos["group"])
    spec = detector.spec
    crops = [cut_face(image, Face(face.box), spec.crop_spec, spec.img_size) for face in row.faces]
    np.testing.assert_allclose([face.prob_fake for face in row.faces], detector.prob_fake(crops), atol=1e-6)


@needs_faces
def test_faces_never_scores_the_whole_photo(detector: Detector, photos: dict[str, Path]) -> None:
    (row,) = detector.predict([photos["group"]], faces="never")
    assert [face.box for face in row.faces] == [(0, 0, 1000, 600)] and row.note == "whole image"


def test_photo_without_a_face_says_so(detector: Detector, photos: dict[str, Path]) -> None:
    rows = detector.predict([photos["noise"], photos["blank"]], faces="always")
    for row in rows:
        assert row.faces == [] and row.note == "no face found"
        assert row.error == "" and row.label == "" and row.prob_fake is None


def test_detector_finds_nothing_in_noise_and_a_face_in_a_face_photo() -> None:
    rng = np.random.default_rng(1)
    assert detect_faces(rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)) == []
    if FACES:
        boxes = detect_faces(load_image(FACES[0]))
        assert len(boxes) == 1


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(224, 224, True), (256, 256, True), (512, 480, True), (300, 250, True),
     (513, 513, False), (640, 480, False), (512, 400, False), (1920, 1080, False)],
)  # fmt: skip
def test_crop_shape_rule(width: int, height: int, expected: bool) -> None:
    assert crop_shaped(width, height) is expected


def test_older_models_region_grows_by_the_margin_and_is_square() -> None:
    assert shifted_region((100, 100, 200, 200), 0.3, 1000, 1000) == (70, 70, 230, 230)
    assert shifted_region((100, 100, 200, 160), 0.0, 1000, 1000) == (100, 80, 200, 180)  # squared
    assert shifted_region((0, 0, 100, 100), 0.3, 1000, 1000) == (0, 0, 160, 160)  # moved inside, not clipped


def test_region_box_may_run_outside_and_is_filled_by_the_spec() -> None:
    assert region_box((100, 100, 200, 160), CropSpec(margin=0.0)) == (100, 80, 200, 180)
    assert region_box((0, 0, 100, 100), CropSpec(margin=0.25)) == (-25, -25, 125, 125)  # not moved inside
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :50] = (255, 0, 0)  # left half red, right half green
    image[:, 50:] = (0, 255, 0)
    face = Face((0, 0, 100, 50))  # wide box at the top: its square region runs 25 px above the image
    replicated = cut_face(image, face, CropSpec(margin=0.0, fill="replicate"), 100)
    black = cut_face(image, face, CropSpec(margin=0.0, fill="constant"), 100)
    assert replicated.shape == (100, 100, 3) and (replicated[:, :50] == (255, 0, 0)).all()
    assert (replicated[:25, :50] == (255, 0, 0)).all() and (replicated[:25, 50:] == (0, 255, 0)).all()
    assert (black[:25] == 0).all() and (black[25:] == replicated[25:]).all()


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(16, 2000),
    height=st.integers(16, 2000),
    data=st.data(),
    margin=st.floats(0.0, 1.0),
)
def test_older_models_region_always_lies_inside_the_image(
    width: int, height: int, data: st.DataObject, margin: float
) -> None:
    x1 = data.draw(st.integers(0, width - 2))
    y1 = data.draw(st.integers(0, height - 2))
    x2 = data.draw(st.integers(x1 + 1, width))
    y2 = data.draw(st.integers(y1 + 1, height))
    cx1, cy1, cx2, cy2 = shifted_region((x1, y1, x2, y2), margin, width, height)
    assert 0 <= cx1 < cx2 <= width and 0 <= cy1 < cy2 <= height
    assert cx1 <= x1 + 1 and cy1 <= y1 + 1 and cx2 >= x2 - 1 and cy2 >= y2 - 1  # the face stays in the crop
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    if side <= min(width, height):
        assert abs((cx2 - cx1) - (cy2 - cy1)) <= 1  # square whenever a square fits


@needs_faces
def test_heatmaps_are_written_per_face_and_are_not_constant(
    detector: Detector, photos: dict[str, Path], tmp_path: Path
) -> None:
    rows = detector.predict([photos["group"], FACES[0], photos["noise"]], heatmap_dir=tmp_path)
    written = [Path(face.heatmap) for row in rows for face in row.faces if face.heatmap]
    assert len(written) == 3 == sum(len(row.faces) for row in rows)
    for path in written:
        assert path.parent == tmp_path and path.suffix == ".png"
        pixels = load_image(path)
        assert pixels.std() > 5  # an overlay with structure, not a flat image
    page = (tmp_path / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # a crop and a heatmap per face, embedded
    assert page.count("data:image/jpeg;base64,") == 3  # each input image with its boxes
    assert "no face found" in page and str(photos["noise"]) in page


def test_grad_cam_maps_depend_on_the_image(detector: Detector) -> None:
    from deepfake_detector.inference.heatmap import GradCam
    from deepfake_detector.spec import preprocess_batch

    rng = np.random.default_rng(2)
    size = detector.spec.img_size
    faces = [load_image(p, size=size) for p in FACES] or [
        rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(2)
    ]
    maps = GradCam(detector.torch_model())(
        preprocess_batch(faces, detector.spec), [True, False][: len(faces)]
    )
    assert maps.shape == (len(faces), size, size)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert max(float(m.std()) for m in maps) > 0.01
