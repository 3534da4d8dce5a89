"""`conclusion.html` of `make demo` (scripts/demo.py): what the run measured, on one page.

`render_conclusion` takes plain dicts (what the demo's steps wrote: the EDA's summary.json, the
evaluations' metrics.json, the predictions' JSONL rows) and returns the page, so the page can be
rendered and checked without running the demo.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_detector.evaluation.interpret import explain, real_called_fake
from deepfake_detector.evaluation.report import format_value
from deepfake_detector.templating import html_templates

TEMPLATES = Path(__file__).parent / "templates"
THUMBNAIL_SIDE = 160
VERDICTS = ("fake", "real", "uncertain")  # anything else (e.g. "" for an unreadable file): no verdict
METRIC_COLUMNS = (
    ("roc_auc", "ROC-AUC", ".4f"),
    ("accuracy", "accuracy", ".4f"),
    ("balanced_accuracy", "balanced acc.", ".4f"),
    ("f1", "F1", ".4f"),
    ("eer", "EER", ".4f"),
    ("ece", "ECE", ".4f"),
    ("threshold", "threshold", ".3f"),
    ("n_real", "real", "d"),
    ("n_fake", "fake", "d"),
)


def thumbnail_uri(path: str | Path, side: int = THUMBNAIL_SIDE) -> str | None:
    """A JPEG data URI of the image, at most `side` px on its longer side; None if unreadable."""
    from PIL import Image

    from deepfake_detector.data.images import UnreadableImage, load_image

    try:
        image = Image.fromarray(load_image(str(path)))  # checked decode: size limits, any format
    except UnreadableImage:
        return None
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def prediction_card(row: Mapping[str, Any], truth: str | None) -> dict[str, Any]:
    """One picture of the grid: the verdict, the truth and whether the call was right."""
    label = str(row.get("label") or "")
    verdict = label if label in VERDICTS else ""
    if not verdict or truth not in ("real", "fake"):
        status = "none" if not verdict else "unknown"
    elif verdict == "uncertain":
        status = "uncertain"
    else:
        status = "right" if verdict == truth else "wrong"
    return {
        "name": os.path.basename(str(row.get("path", ""))),
        "truth": truth or "unknown",
        "verdict": verdict or "no verdict",
        "prob_fake": row.get("prob_fake"),
        "status": status,
        "thumbnail": row.get("thumbnail"),
        "why": row.get("error") or row.get("note") or "",
    }


def count_rows(counts: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Rows split, real, fake, total of the EDA's counts, and a total row."""
    rows = [
        {"split": split, "real": c.get("real", 0), "fake": c.get("fake", 0)} for split, c in counts.items()
    ]
    if len(rows) > 1:
        rows.append(
            {"split": "all", "real": sum(r["real"] for r in rows), "fake": sum(r["fake"] for r in rows)}
        )
    for row in rows:
        row["total"] = row["real"] + row["fake"]
    return rows


def render_conclusion(
    *,
    data_name: str,
    command: str,
    eda: Mapping[str, Any],
    evaluations: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]],
    predictions: Sequence[Mapping[str, Any]],
    truths: Mapping[str, str],
    links: Mapping[str, str],
    timings: Mapping[str, float],
) -> str:
    """The page. `evaluations`: (title, metrics.json) pairs; `predictions`: JSONL rows, each may carry
    a `thumbnail` data URI; `truths`: path -> "real" / "fake"; `links`: title -> relative href."""
    env = html_templates(TEMPLATES, strict=True)
    env.filters["fmt"] = format_value
    env.filters["real_called_fake"] = real_called_fake
    duplicates = eda.get("duplicates", {})
    by_file = {os.path.realpath(path): truth for path, truth in truths.items()}
    cards = [
        prediction_card(
            row, truths.get(str(row.get("path"))) or by_file.get(os.path.realpath(str(row.get("path"))))
        )
        for row in predictions
    ]
    return env.get_template("conclusion.html").render(
        data_name=data_name,
        command=command,
        counts=count_rows(eda.get("counts", {})),
        exact_groups=len(duplicates.get("exact", [])),
        cross_split_groups=sum(bool(x) for x in duplicates.get("cross_split", {}).get("exact", [])),
        unreadable=len(eda.get("unreadable", [])),
        evaluations=[
            {"title": title, "metrics": metrics, "meaning": explain(metrics, [])}
            for title, metrics in evaluations
        ],
        columns=METRIC_COLUMNS,
        cards=cards,
        n_wrong=sum(card["status"] == "wrong" for card in cards),
        links=links,
        timings=timings,
    )
