"""The schema of `model.json`: every field's type, range, length and finiteness, checked on load.

`validate_spec_dict(data, source)` raises `SpecError` (a ValueError) naming the file and the field:

    model.json: field 'temperature' must be a finite number > 0, got Infinity

so that a hand-edited or damaged spec is refused when the model is loaded, not per image (or, worse,
silently: an infinite temperature makes every score 0.5). Fields this version does not know are left
alone (a newer writer may add some); a "crop" section must hold only the keys it knows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, get_args, get_type_hints

SPEC_FORMAT = 1  # the newest model.json format this code reads (spec.SPEC_FORMAT)
IMG_SIZE_RANGE = (8, 1024)
MARGIN_RANGE = (0.0, 2.0)
REQUIRED = ("architecture", "img_size")
_HEX64 = re.compile(r"[0-9a-f]{64}")

Check = Callable[[Any], str | None]  # a problem ("must be ...") or None when the value is fine


class SpecError(ValueError):
    """A model.json that does not follow the schema; names the file and the field."""


def _shown(value: Any) -> str:
    """The value as JSON writes it (Infinity, "abc", [0.5, 0.5]), cut to a readable length."""
    try:
        text = json.dumps(value, allow_nan=True, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Check:
    """A finite number (not a bool, not a string) in [low, high] (low excluded with `low_open`)."""
    if low is not None and high is not None:
        want = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    elif low is not None:
        want = f"{'>' if low_open else '>='} {low:g}"
    else:
        want = ""
    message = f"must be a finite number {want}".rstrip()

    def check(value: Any) -> str | None:
        if not _is_number(value) or not math.isfinite(value):
            return message
        if low is not None and (value <= low if low_open else value < low):
            return message
        if high is not None and value > high:
            return message
        return None

    return check


def integer(low: int, high: int | None = None) -> Check:
    want = f"in [{low}, {high}]" if high is not None else f">= {low}"

    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            return f"must be an integer {want} (a JSON number, not a string)"
        return None

    return check


def text(*, non_empty: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or (non_empty and not value.strip()):
            return "must be a non-empty string" if non_empty else "must be a string"
        return None

    return check


def choice(*options: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(map(repr, options))}"

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def sha256_hex(value: Any) -> str | None:
    if isinstance(value, str) and (value == "" or _HEX64.fullmatch(value)):
        return None
    return "must be a SHA-256 as 64 lower-case hex digits (or empty)"


def sequence(length: int, item: Check, what: str) -> Check:
    """A JSON array of exactly `length` items, each passing `item` (`what` describes one)."""

    def check(value: Any) -> str | None:
        if not isinstance(value, (list, tuple)) or len(value) != length:
            return f"must be a list of {length} {what}"
        return next((f"must be a list of {length} {what}" for v in value if item(v)), None)

    return check


def string_list(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return None
    return "must be a list of strings"


def mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a JSON object"


FIELDS: dict[str, Check] = {
    "architecture": text(non_empty=True),
    "img_size": integer(*IMG_SIZE_RANGE),
    "mean": sequence(3, number(), "finite numbers"),
    "std": sequence(3, number(0.0, low_open=True), "finite numbers > 0"),
    "class_names": sequence(2, text(non_empty=True), "non-empty strings"),
    "threshold": number(0.0, 1.0),
    "threshold_method": text(),
    "uncertain_band": number(0.0, 0.49),
    "temperature": number(0.0, low_open=True),
    "name": text(),
    "version": text(),
    "preset": text(),
    "data_hash": text(),
    "trained_on": string_list,
    "weights_sha256": sha256_hex,
    "onnx_sha256": sha256_hex,
    "int8_onnx_sha256": sha256_hex,
    "metrics": mapping,
    "fusion": mapping,
    "face_margin": number(*MARGIN_RANGE),
    "format": integer(1, SPEC_FORMAT),
}


def _crop_fields() -> dict[str, Check]:
    """A check per CropSpec field, from its type (a Literal gives the choices), so the two agree."""
    from deepfake_detector.data.crop import CropSpec

    ranged = {
        "margin": number(*MARGIN_RANGE),
        "crop_min_fill": number(0.0, 1.0, low_open=True),
        "landmark_scale": number(0.5, 10.0),
    }
    checks: dict[str, Check] = {}
    for name, hint in get_type_hints(CropSpec).items():
        options = get_args(hint)
        if name in ranged:
            checks[name] = ranged[name]
        elif options and all(isinstance(option, str) for option in options):
            checks[name] = choice(*options)
        elif hint is bool:
            checks[name] = boolean
        elif hint is float:
            checks[name] = number()
        else:
            checks[name] = lambda value: None
    return checks


CROP_FIELDS = _crop_fields()


def _problem(source: str, name: str, problem: str, value: Any) -> SpecError:
    return SpecError(f"{source}: field '{name}' {problem}, got {_shown(value)}")


def _check_crop(value: Any, source: str) -> None:
    if value is None:
        return
    if hasattr(value, "to_dict") and not isinstance(value, dict):  # a CropSpec built in Python
        value = value.to_dict()
    if not isinstance(value, dict):
        raise _problem(source, "crop", "must be a JSON object (or null)", value)
    unknown = sorted(set(value) - set(CROP_FIELDS))
    if unknown:
        raise SpecError(
            f"{source}: field 'crop' has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(CROP_FIELDS)}"
        )
    for key, check in CROP_FIELDS.items():
        if key in value and (problem := check(value[key])):
            raise _problem(source, f"crop.{key}", problem, value[key])


def validate_spec_dict(data: dict[str, Any], source: str = "model.json") -> None:
    """Raise SpecError naming `source` and the first field that breaks the schema (see FIELDS)."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: must hold a JSON object, got {type(data).__name__}")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise SpecError(f"{source}: missing required field(s) {', '.join(map(repr, missing))}")
    if "format" in data and _is_number(data["format"]) and data["format"] > SPEC_FORMAT:
        raise SpecError(
            f"{source}: field 'format' is {_shown(data['format'])}, newer than this version of "
            f"deepfake-detector reads ({SPEC_FORMAT}); upgrade deepfake-detector"
        )
    for name, check in FIELDS.items():
        if name in data and (problem := check(data[name])):
            raise _problem(source, name, problem, data[name])
    _check_crop(data.get("crop"), source)
