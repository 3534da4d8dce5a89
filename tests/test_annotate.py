"""Results like Ultralytics': Prediction.plot() / .save(), `predict --save DIR` and `--report DIR`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_helpers import dfdc_image
from typer.testing import CliRunner

from deepfake_detector import Detector
from deepfake_detector.cli import app
from deepfake_detector.data.images import load_image
from deepfake_detector.inference.annotate import LABEL_RGB

runner = CliRunner()


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load("fast")


def in_a_photo(face: Path, folder: Path) -> Path:
    """The dfdc crop pasted into a larger grey photo, so that the face is found and boxed."""
    canvas = np.full((600, 800, 3), 120, np.uint8)
    crop = load_image(face)
    canvas[150 : 150 + crop.shape[0], 250 : 250 + crop.shape[1]] = crop
    path = folder / f"photo_of_{face.stem}.png"
    Image.fromarray(canvas).save(path)
    return path


def test_plot_draws_each_face_box_in_its_label_colour(detector: Detector, tmp_path: Path) -> None:
    photo = in_a_photo(dfdc_image("Fake", 2), tmp_path)
    (prediction,) = detector.predict([photo])
    assert prediction.faces, prediction.note
    picture = prediction.plot()
    original = load_image(photo)
    assert picture.shape == original.shape and picture.dtype == np.uint8
    assert not np.array_equal(picture, original)
    face = prediction.faces[0]
    x1, y1, x2, y2 = face.box
    edge = picture[(y1 + y2) // 2, x1]  # the middle of the box's left edge
    assert tuple(int(v) for v in edge) == LABEL_RGB[face.label]
    assert np.array_equal(picture[-1, -1], original[-1, -1])  # away from boxes and the band: untouched

    saved = prediction.save(tmp_path / "out" / "annotated.png")
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")), picture)
    small = prediction.plot(max_side=200)
    assert max(small.shape[:2]) == 200
    with pytest.raises(ValueError, match="cannot save as .gif"):
        prediction.save(tmp_path / "x.gif")


def test_plot_of_an_input_given_as_bytes_needs_the_image(detector: Detector) -> None:
    data = dfdc_image("Real", 0).read_bytes()
    (prediction,) = detector.predict([data])
    with pytest.raises(ValueError, match="pass the image"):
        prediction.plot()
    assert prediction.plot(image=load_image(dfdc_image("Real", 0))).shape[2] == 3


def test_predict_save_and_report_write_pictures_and_a_summary_page(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "a").mkdir(parents=True)
    (inputs / "b").mkdir()
    faces = [dfdc_image(cls, i) for cls in ("Real", "Fake") for i in range(3)]
    for k, face in enumerate(faces):
        (inputs / ("a" if k % 2 else "b") / face.name).write_bytes(face.read_bytes())
    (inputs / "b" / faces[1].name).write_bytes(faces[1].read_bytes())  # the same name in two folders
    (inputs / "a" / "broken.jpg").write_bytes(b"no image here")
    save, report = tmp_path / "saved", tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "predict",
            str(inputs),
            "--model",
            "fast",
            "--format",
            "csv",
            "--save",
            str(save),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 1, result.output  # one unreadable file
    assert "Detects: face swaps like DFDC's" in result.stderr  # what the model detects, in one line
    written = sorted(p.name for p in save.iterdir())
    assert len(written) == 7 and f"{faces[1].stem}-2.jpg" in written  # one per scored image, none lost
    assert all(Image.open(save / name).size == (224, 224) for name in written)
    page = (report / "index.html").read_text()
    counts = dict(re.findall(r"<tr><th>([a-z ]+)</th><td class=\"n\">(\d+)</td></tr>", page))
    assert counts["images"] == "8" and counts["errors"] == "1"
    assert sum(int(counts.get(k, 0)) for k in ("fake", "real", "uncertain")) == 7
    assert page.count("<figure>") == 7 and "broken.jpg" in page and 'src="histogram.png"' in page
    assert Image.open(report / "histogram.png").size[0] > 400
    shown = [float(v) for v in re.findall(r"P\(fake\) (\d\.\d\d)</figcaption>", page)]
    assert shown == sorted(shown, reverse=True)  # most suspicious first
