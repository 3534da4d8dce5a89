"""A prediction run over files, folders and globs, as `deepfake-detector predict` does it, for Python too.

    summary = run_predict("runs/mobilenet", ["photos/"], PredictOptions(format="jsonl", out=Path("r.jsonl")))
    summary.describe()   # "12 images, 1 video: 3 fake, 9 real, 0 no face, 1 error in 2.1 s (...)"
    summary.exit_code    # 0 every file read, 1 some could not be, 2 none could

Every output path is checked before any work starts (OutputError), `resume` skips the paths already
in the JSONL file and appends the rest, and the counts cover images and videos separately.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deepfake_detector.inference.detector import Detector
from deepfake_detector.inference.inputs import expand_inputs
from deepfake_detector.inference.results import Prediction
from deepfake_detector.inference.video.frames import is_video_path
from deepfake_detector.inference.writers import PredictionWriter, read_done_paths
from deepfake_detector.modelcard import detects_line
from deepfake_detector.options import PredictOptions, value_of
from deepfake_detector.outputs import check_output_folder, plural
from deepfake_detector.verdict import LABELS

__all__ = ["NoInput", "PredictOptions", "PredictSummary", "run_predict"]

PROGRESS_MIN_FILES = 256  # below this a run takes seconds and a bar is only noise


class NoInput(ValueError):
    """Nothing to score: no file, folder or pattern given yielded an image or a video."""


class ResultWriter(Protocol):
    def check(self, inputs: Iterable[str | Path] = ()) -> None: ...
    def begin(self, meta: dict[str, Any] | None = None) -> None: ...
    def write(self, predictions: list[Prediction]) -> None: ...
    def abort(self) -> None: ...
    def close(self, summary: dict[str, Any]) -> None: ...


@dataclass
class PredictSummary:
    images: int = 0
    videos: int = 0
    fake: int = 0
    real: int = 0
    uncertain: int = 0
    no_face: int = 0
    errors: int = 0
    skipped: int = 0  # already in the resumed file
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (input, why it gave no file)
    seconds: float = 0.0
    engine: str = ""
    out: Path | None = None
    detects: str = ""  # what the model detects, in one line (modelcard.detects_line)

    @property
    def files(self) -> int:
        return self.images + self.videos

    @property
    def exit_code(self) -> int:
        """0: every input read; 1: some file could not be read or some input gave none; 2: none read."""
        if self.files and self.errors == self.files:
            return 2
        return 1 if self.errors or self.unmatched else 0

    def count(self, batch: list[Prediction]) -> None:
        for p in batch:
            if is_video_path(p.path):
                self.videos += 1
            else:
                self.images += 1
            if p.error:
                self.errors += 1
            elif p.label in LABELS:
                setattr(self, p.label, getattr(self, p.label) + 1)
            else:
                self.no_face += 1

    def describe(self) -> str:
        """One line for people, e.g. "1 image, 2 videos: 2 fake, 1 real, 0 no face, 0 errors in 3.1 s"."""
        if not self.files:
            return f"nothing to do: all {self.skipped} files are already in {self.out}"
        kinds = [plural(self.images, "image")] if self.images or not self.videos else []
        kinds += [plural(self.videos, "video")] if self.videos else []
        rate = self.files / self.seconds if self.seconds > 0 else 0.0
        unit = "files/s" if self.videos else "img/s"
        return (
            f"{', '.join(kinds)}: {self.fake} fake, {self.real} real, "
            + (f"{self.uncertain} uncertain, " if self.uncertain else "")
            + f"{self.no_face} no face, "
            f"{plural(self.errors, 'error')}"
            + (f", {self.skipped} already done" if self.skipped else "")
            + f" in {self.seconds:.1f} s ({rate:.1f} {unit}, {self.engine})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "videos": self.videos,
            "fake": self.fake,
            "real": self.real,
            "uncertain": self.uncertain,
            "no_face": self.no_face,
            "errors": self.errors,
            "skipped_already_done": self.skipped,
            "unmatched": [{"input": item, "reason": reason} for item, reason in self.unmatched],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.files / self.seconds, 1) if self.seconds > 0 else None,
            "exit_code": self.exit_code,
        }


def run_predict(
    detector_or_model: Detector | str | Path,
    sources: Iterable[str | Path],
    options: PredictOptions | None = None,
    writer: ResultWriter | None = None,
) -> PredictSummary:
    """Score `sources` (files, folders, globs, "-" for paths on stdin) and write each batch to `writer`
    (default: PredictionWriter(options.format, options.out)). Raises OutputError for a bad output
    path and NoInput when the sources hold no file, both before the model is loaded."""
    options = options or PredictOptions()
    options.check()
    started = time.perf_counter()
    expanded = expand_inputs([str(s) for s in sources])
    writer = writer or PredictionWriter(options.format, options.out, append=options.resume)
    writer.check(expanded.paths)
    folders = (
        (options.heatmap, "heatmap folder"),
        (options.video_out, "video folder"),
        (options.save, "--save folder"),
        (options.report, "report folder"),
    )
    for folder, what in folders:
        if folder is not None:
            check_output_folder(folder, what)
    done = read_done_paths(options.out) if options.resume and options.out is not None else set()
    todo = [p for p in expanded.paths if p not in done]
    summary = PredictSummary(skipped=len(expanded.paths) - len(todo), unmatched=expanded.problems)
    summary.out = options.out
    if not todo:
        if summary.skipped:
            return summary
        reasons = "; ".join(f"{item}: {reason}" for item, reason in expanded.problems)
        raise NoInput(f"no input images or videos{' (' + reasons + ')' if reasons else ''}")
    detector = _detector(detector_or_model, options)
    summary.engine = detector.engine_name
    summary.detects = detects_line(detector.spec)
    model = detector.folder if isinstance(detector_or_model, Detector) else detector_or_model
    spec = detector.spec
    writer.begin(
        {
            "model": str(model),
            "engine": detector.engine_name,
            "threshold": round(float(spec.threshold), 6),
            "threshold_method": spec.threshold_method,
            "uncertain_band": round(float(spec.uncertain_band), 6),
            "rule": spec.rule.describe(),
        }
    )
    _score_all(detector, todo, options, writer, summary)
    summary.seconds = time.perf_counter() - started
    writer.close(summary.to_dict())
    return summary


def _detector(detector_or_model: Detector | str | Path, options: PredictOptions) -> Detector:
    if isinstance(detector_or_model, Detector):
        return detector_or_model.with_rule(options.threshold, options.uncertain_band)
    return Detector.load(
        detector_or_model,
        engine=value_of(options.engine),
        threads=options.threads,
        device=options.device,
        threshold=options.threshold,
        uncertain_band=options.uncertain_band,
    )


def _score_all(
    detector: Detector,
    todo: list[str],
    options: PredictOptions,
    writer: ResultWriter,
    summary: PredictSummary,
) -> None:
    advance = None
    if options.progress and len(todo) >= PROGRESS_MIN_FILES:
        from deepfake_detector.inference.progress import make_progress

        advance = make_progress(len(todo))
    try:
        for batch in detector.iter_predict(
            todo,
            faces=value_of(options.faces),
            batch_size=options.batch_size,
            workers=options.workers,
            heatmap_dir=options.heatmap,
            video=options.video_options(),
            save_dir=options.save,
            report_dir=options.report,
        ):
            writer.write(batch)
            summary.count(batch)
            if advance is not None:
                advance(len(batch))
    except BaseException:
        writer.abort()
        raise
    finally:
        if advance is not None:
            advance(0, done=True)
