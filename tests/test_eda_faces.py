"""EDA face statistics: faces per image and face size per class, and the face-size shortcut."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import shared_images
from PIL import Image

from deepfake_detector.data.manifest import discover
from deepfake_detector.eda.faces import face_statistics, face_warnings

REAL = shared_images("dfdc", "Test", "Real", 4)  # tight crops: the face spans ~96% of the image
FAKE = shared_images("stylegan-ffhq", "Test", "Fake", 4)  # whole faces: ~75%
if len(REAL) < 4 or len(FAKE) < 4:
    pytest.fail("../shared/data (dfdc and stylegan-ffhq Test) is needed by these tests", pytrace=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    for cls, files in (("Real", REAL), ("Fake", FAKE)):
        (root / cls).mkdir()
        for f in files:
            shutil.copy(f, root / cls / f.name)
    noise = np.random.default_rng(0).integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "Fake" / "noise.png")  # no face in it
    return root


def test_counts_and_sizes_per_class_flag_a_face_size_shortcut(dataset: Path) -> None:
    stats = face_statistics(discover(dataset), per_class=None, workers=1)
    real, fake = stats["by_class"]["real"], stats["by_class"]["fake"]
    assert (real["images"], real["faces_1"], real["faces_0"]) == (4, 4, 0)
    assert (fake["images"], fake["faces_0"]) == (5, 1) and fake["faces_1"] + fake["faces_2_plus"] == 4
    assert fake["share"]["faces_0"] == pytest.approx(0.2)
    assert real["face_fraction_percentiles"]["50"] > 0.9 > fake["face_fraction_percentiles"]["50"] > 0.6
    assert stats["size_shortcut"]["auc"] == 1.0 and stats["size_shortcut"]["flagged"]
    warnings = face_warnings(stats)
    assert any("face size alone separates" in w for w in warnings)
    assert any("20% of the sampled fake images have no face" in w for w in warnings)


def test_a_seeded_sample_per_class_is_reproducible(dataset: Path) -> None:
    one = face_statistics(discover(dataset), per_class=2, seed=3, workers=1)
    two = face_statistics(discover(dataset), per_class=2, seed=3, workers=1)
    assert one == two and one["by_class"]["real"]["images"] == 2 == one["by_class"]["fake"]["images"]
