"""Render the HTML report from the summary and figures, and write both files atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfake_detector.fileio import atomic_write_json, atomic_write_text
from deepfake_detector.templating import html_templates

TEMPLATES = Path(__file__).parent / "templates"
MAX_LISTED_GROUPS = 200  # per kind in the HTML; summary.json has all of them
LONG_TABLE = 10  # rows: a longer table starts collapsed (<details>)


def listed_groups(duplicates: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Cross-split groups first, then the rest, capped for a readable page."""
    groups = [
        {"paths": paths, "cross_split": cross_split, "cross_class": cross_class}
        for paths, cross_split, cross_class in zip(
            duplicates[kind],
            duplicates["cross_split"][kind],
            duplicates["cross_class"][kind],
            strict=True,
        )
    ]
    groups.sort(key=lambda g: (not g["cross_split"], not g["cross_class"]))
    return groups[:MAX_LISTED_GROUPS]


def render_html(summary: dict[str, Any], pictures: dict[str, Any]) -> str:
    """`pictures`: chart data URIs and Thumbnail lists, see `run._pictures`."""
    env = html_templates(TEMPLATES, strict=True)
    return env.get_template("report.html").render(
        summary=summary,
        pictures=pictures,
        exact_groups=listed_groups(summary["duplicates"], "exact"),
        near_groups=listed_groups(summary["duplicates"], "near"),
        max_listed=MAX_LISTED_GROUPS,
        long_table=LONG_TABLE,
    )


def write_report(out_dir: str | Path, summary: dict[str, Any], html: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path, html_path = out_dir / "summary.json", out_dir / "report.html"
    atomic_write_json(summary_path, summary)
    atomic_write_text(html_path, html)
    return html_path, summary_path
