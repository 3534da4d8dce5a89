"""Write MODEL_CARD.md for the models shipped in the package, with their measured Test-split figures.

    python scripts/write_model_cards.py [RESULTS]

Each card holds the Validation figures of its model.json and the Test-split figures that
`deepfake-detector evaluate <model> ../shared/data/dfdc ../shared/data/stylegan-ffhq --out
benchmarks/results/eval-<model>` measured (RESULTS/eval-<model>/metrics.json, read now), each
source the model never trained on marked unseen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deepfake_detector.locate import PACKAGED_MODELS
from deepfake_detector.modelcard import write_model_card

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("default", "fast")


def test_figures(results: Path, model: str) -> dict[str, dict]:
    """{dataset: metrics} from an evaluate run's metrics.json (empty, with a note, when missing)."""
    path = results / f"eval-{model}" / "metrics.json"
    if not path.is_file():
        print(f"note: {path} not found: the {model} card has its Validation figures only", file=sys.stderr)
        return {}
    return {name: m for name, m in json.loads(path.read_text()).items() if isinstance(m, dict)}


def main(argv: list[str]) -> int:
    results = Path(argv[0]) if argv else ROOT / "benchmarks" / "results"
    for model in SHIPPED:
        folder = PACKAGED_MODELS / model
        if not (folder / "model.json").is_file():
            print(f"error: {folder}: no model.json", file=sys.stderr)
            return 2
        path = write_model_card(folder, evaluations=test_figures(results, model))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
