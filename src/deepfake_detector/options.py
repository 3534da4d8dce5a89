"""The options of each command, typed, with their defaults defined once (the CLI reads them from here).

Each CLI command parses its arguments into one of these and makes one library call with it
(`deepfake_detector.commands` and `deepfake_detector.inference.batch_run`); Python users build the same
objects. Choices are `StrEnum`s, so a member is also its plain string ("onnx" == Engine.onnx).
Nothing heavy is imported here: the CLI imports this module to build its help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepfake_detector.inference.video.scoring import VideoOptions


class Engine(StrEnum):
    """What runs the model: ONNX Runtime when an exported model is there (auto), PyTorch, or ONNX."""

    auto = "auto"
    torch = "torch"
    onnx = "onnx"


class Faces(StrEnum):
    """Face policy (data/crop.py): auto (faces cut by the model's crop spec; a small square image in
    which no face is found is scored whole), always (only detected faces), never (whole images)."""

    auto = "auto"
    always = "always"
    never = "never"


class Runner(StrEnum):
    """Where predict-dataset runs: this process, or a Ray Data actor pool."""

    local = "local"
    ray = "ray"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


class Aggregate(StrEnum):
    """Per-track video score: `confident` (the surest quarter of the frames) or `mean`."""

    confident = "confident"
    mean = "mean"


class ExportFormat(StrEnum):
    onnx = "onnx"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def value_of(choice: Any) -> Any:
    """The plain string of an enum member (None and plain values unchanged), for library calls."""
    return choice.value if isinstance(choice, StrEnum) else choice


@dataclass
class PredictOptions:
    engine: Engine = Engine.auto  # these three apply when run_predict is given a model, not a Detector
    threads: int | None = None
    device: str = "cpu"
    threshold: float | None = None  # None: the model's own (model.json)
    uncertain_band: float | None = None  # None: the model's own (default 0.05)
    faces: Faces = Faces.auto
    batch_size: int = 64
    workers: int = 2
    format: OutputFormat = OutputFormat.table
    out: Path | None = None  # None: stdout
    resume: bool = False  # with format jsonl and out: skip the paths already in out, append the rest
    heatmap: Path | None = None  # folder for Grad-CAM overlays and index.html (needs PyTorch)
    save: Path | None = None  # folder for annotated copies of the images (Prediction.plot)
    report: Path | None = None  # folder for a summary page: counts, P(fake) histogram, most suspicious
    frames: int | None = None  # videos: frames spread uniformly (default 32)
    every: int | None = None  # videos: every k-th frame instead
    aggregate: Aggregate = Aggregate.confident
    video_out: Path | None = None  # videos: contact sheets and timelines (default: the heatmap folder)
    progress: bool = True  # a bar on stderr for runs of inference.batch_run.PROGRESS_MIN_FILES files or more

    def check(self) -> None:
        """ValueError for options that do not go together."""
        if self.resume and (value_of(self.format) != "jsonl" or self.out is None):
            raise ValueError("--resume needs --format jsonl and --out FILE (the file to continue)")
        if self.frames is not None and self.every is not None:
            raise ValueError("give --frames (spread uniformly) or --every (every K-th frame), not both")
        check_rule(self.threshold, self.uncertain_band)

    def video_options(self) -> VideoOptions:
        from deepfake_detector.inference.video.scoring import VideoOptions

        return VideoOptions(
            frames=self.frames,
            every=self.every,
            aggregate=value_of(self.aggregate),
            out_dir=self.video_out,
            progress=self.progress,
        )


def check_rule(threshold: float | None, uncertain_band: float | None) -> None:
    """ValueError naming the option for a --threshold outside [0, 1] or an --uncertain-band outside [0, 0.5)."""
    from deepfake_detector.verdict import DEFAULT_UNCERTAIN_BAND, DecisionRule

    try:
        DecisionRule(0.5 if threshold is None else threshold, 0.0)
    except ValueError as exc:
        raise ValueError(f"--threshold: {exc}") from exc
    try:
        DecisionRule(0.5, DEFAULT_UNCERTAIN_BAND if uncertain_band is None else uncertain_band)
    except ValueError as exc:
        raise ValueError(f"--uncertain-band: {exc}") from exc


@dataclass
class EdaOptions:
    data: Path
    out: Path
    limit_per_class: int | None = None  # at most N images per split and class (a seeded sample)
    seed: int = 0
    workers: int = 2
    near_distance: int = 4  # max perceptual-hash Hamming distance of near duplicates
    resume: bool = False


@dataclass
class TrainOptions:
    data: list[str] | None = None  # one dataset, or several for a frozen-feature preset; None with resume
    preset: str = "default"
    out: Path = Path("runs/latest")
    resume: Path | None = None  # continue the interrupted run in this folder (then `out` is unused)
    model: str | None = None
    epochs: int | None = None
    img_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    pretrained: bool | None = None
    weights: str | None = None
    trust_pickle: bool = False
    limit_per_class: int | None = None
    cache_dir: str | None = None
    devices: int | str | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    workers: int | None = None
    settings: list[str] = field(default_factory=list)  # any other preset field, "key=value"
    progress: bool = True
    faces: Faces | None = None  # None: what the model's crop spec says

    @property
    def run_dir(self) -> Path:
        return self.resume if self.resume is not None else self.out

    def overrides(self) -> dict[str, Any]:
        """The preset fields this run overrides; ValueError for a `settings` item that is not key=value."""
        overrides: dict[str, Any] = {
            "model": self.model,
            "epochs": self.epochs,
            "img_size": self.img_size,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "pretrained": self.pretrained,
            "weights": self.weights,
            "trust_pickle": self.trust_pickle or None,
            "limit_per_class": self.limit_per_class,
            "cache_dir": self.cache_dir,
            "devices": int(self.devices) if str(self.devices).isdigit() else self.devices,
            "num_nodes": self.num_nodes,
            "strategy": self.strategy,
            "workers": self.workers,
        }
        for item in self.settings:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--set expects key=value, got {item!r}")
            overrides[key.strip()] = value
        return overrides


@dataclass
class EvaluateOptions:
    model: str = "default"
    datasets: list[Path] = field(default_factory=list)
    out: Path = Path("eval")
    split: str | None = None  # of Kaggle-layout datasets; None: test
    robustness: bool = False
    batch_size: int = 64
    workers: int = 2
    limit_per_class: int | None = None
    engine: Engine = Engine.auto
    device: str = "cpu"
    faces: Faces | None = None  # None: what the model's crop spec says


@dataclass
class ExportOptions:
    model: str = "default"
    format: ExportFormat = ExportFormat.onnx
    out: Path | None = None  # default: model.onnx beside model.json
    int8: bool = False
    calib: Path | None = None  # calibration images for int8 (default: the run's validation split)


@dataclass
class PredictDatasetOptions:
    source: str = ""
    model: str = "default"
    runner: Runner = Runner.local
    address: str | None = None
    out: Path = Path("results.parquet")
    batch_size: int = 64
    num_actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    device: str = "cpu"
    shard_rows: int | None = None
    faces: Faces = Faces.auto
    engine: Engine = Engine.auto
    workers: int = 2
    threads: int | None = None


@dataclass
class ServeOptions:
    """The server's settings; the limits' defaults are service.limits.ServiceLimits' (a test checks)."""

    model: str = "default"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    engine: Engine = Engine.auto
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_video_mb: float = 50.0
    max_video_s: float = 60.0
    threshold: float | None = None  # None: the model's own
    uncertain_band: float | None = None
    queue_size: int = 16
    timeout: float = 30.0
    threads: int | None = None
    max_batch_files: int = 16
    upload_timeout: float = 30.0
    keep_alive: float = 30.0
    log_level: LogLevel = LogLevel.info

    def service_config(self) -> dict[str, Any]:
        """What each server process rebuilds its app from (service.app.app_from_env)."""
        return {
            "model": self.model,
            "engine": value_of(self.engine),
            "max_upload_mb": self.max_upload_mb,
            "max_pixels": self.max_pixels,
            "max_video_mb": self.max_video_mb,
            "max_video_s": self.max_video_s,
            "threshold": self.threshold,
            "uncertain_band": self.uncertain_band,
            "queue_size": self.queue_size,
            "timeout_s": self.timeout,
            "threads": self.threads,
            "max_batch_files": self.max_batch_files,
            "upload_timeout_s": self.upload_timeout,
            "log_level": value_of(self.log_level),
        }


class InfoFormat(StrEnum):
    """How `info` prints a model card: rendered for the terminal, as markdown source, or JSON."""

    text = "text"
    markdown = "markdown"
    json = "json"


@dataclass
class InfoOptions:
    model: str = "default"
    format: InfoFormat = InfoFormat.text


@dataclass
class PushOptions:
    run: str = ""  # a finished model folder (or a packaged model name)
    repo: str = ""  # owner/name on the Hugging Face Hub
    private: bool = False  # for a repository created by this push
    revision: str | None = None  # the branch to push to; None: main
    message: str | None = None  # commit message
    license: str = "other"  # README front matter; "other" points at the card's licence section
