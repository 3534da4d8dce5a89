"""JSON Schemas of what predictions look like: `prediction` (Python's Prediction.to_dict(), JSON and
JSONL rows, the verdict fields of every REST answer) and `prediction-row` (a CSV row)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).parent


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `name` ("prediction" or "prediction-row") as a dict."""
    path = SCHEMAS / f"{name}.schema.json"
    if not path.is_file():
        known = ", ".join(sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")))
        raise ValueError(f"no schema {name!r} (known: {known})")
    return json.loads(path.read_text(encoding="utf-8"))
