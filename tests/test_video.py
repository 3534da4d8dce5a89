"""Videos: frame sampling and decoding, IoU tracks, aggregation, verdicts and timeline of videos built
from the shared dfdc face crops, bad videos in a batch, the contact sheet and timeline files, the API."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from inference_helpers import assert_verdict_consistent
from PIL import Image
from service_helpers import PACKAGED_DEFAULT
from typer.testing import CliRunner

from deepfake_detector.cli import app
from deepfake_detector.data.images import load_image, resize_image
from deepfake_detector.inference import Detector
from deepfake_detector.inference.video import frames as video_module
from deepfake_detector.inference.video.aggregate import confident_score, mean_score
from deepfake_detector.inference.video.frames import iter_frames, probe_video, sample_indices
from deepfake_detector.inference.video.results import VideoPrediction
from deepfake_detector.inference.video.scoring import VideoOptions, score_video
from deepfake_detector.inference.video.tracking import IouTracker, iou
from deepfake_detector.service import create_app

DFDC_TEST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dfdc" / "Test"
FPS = 8.0
MARGIN = 0.25  # chosen images sit at least this far from the threshold, so video coding cannot flip them
CANDIDATES = 16  # images looked at per class to find 3 clear ones
runner = CliRunner()

needs_default = pytest.mark.skipif(
    not (PACKAGED_DEFAULT / "model.json").is_file(), reason="the packaged fast model is not installed"
)


# --------------------------------------------------------------------------- helpers
def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    """RGB frames -> .avi (MJPG, quality 95) or .mp4 (mp4v) with OpenCV's VideoWriter."""
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} video here"
    if fourcc == "MJPG":
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        return img.size


def paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int) -> None:
    canvas[y : y + face.shape[0], x : x + face.shape[1]] = face


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def detector() -> Detector:
    if not (PACKAGED_DEFAULT / "model.json").is_file():
        pytest.skip("the packaged fast model is not installed")
    return Detector.load("fast")


@pytest.fixture(scope="module")
def clear_faces(detector: Detector) -> dict[str, list[np.ndarray]]:
    """3 dfdc Test images per class that the default model, scoring them as images, gets right
    with a margin of MARGIN from the threshold."""
    out: dict[str, list[np.ndarray]] = {}
    threshold = detector.spec.threshold
    for cls, want in (("Real", "real"), ("Fake", "fake")):
        folder = DFDC_TEST / cls
        files = sorted(folder.glob("*.jpg"))[:CANDIDATES] if folder.is_dir() else []
        if not files:
            pytest.skip(f"shared dfdc test images not found in {folder}")
        rows = detector.predict(files)
        clear = [
            Path(row.path)
            for row in rows
            if row.label == want and row.prob_fake is not None and abs(row.prob_fake - threshold) >= MARGIN
        ]
        if len(clear) < 3:
            pytest.skip(f"fewer than 3 clear {cls} images among the first {CANDIDATES}")
        out[want] = [load_image(path) for path in clear[:3]]
    return out


@pytest.fixture(scope="module")
def videos(
    tmp_path_factory: pytest.TempPathFactory, clear_faces: dict[str, list[np.ndarray]]
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    real, fake = clear_faces["real"], clear_faces["fake"]
    out = {
        "real": write_video(folder / "real_only.avi", [real[i % 3] for i in range(12)]),
        "fake": write_video(folder / "fake_only.avi", [fake[i % 3] for i in range(12)]),
        # 24 frames at 8 fps: real for frames 0-11 (0-1.5 s), fake from frame 12 (1.5 s)
        "half": write_video(
            folder / "real_then_fake.mp4", [real[i % 3] for i in range(12)] + [fake[i % 3] for i in range(12)]
        ),
        "long": write_video(folder / "three_seconds.avi", [real[i % 3] for i in range(24)]),
    }
    good = out["real"].read_bytes()
    out["corrupt"] = folder / "corrupt.mp4"
    out["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out["truncated"] = folder / "truncated.avi"
    out["truncated"].write_bytes(good[:2000])  # the header and a bit: nothing decodable
    out["cut"] = folder / "cut.avi"
    out["cut"].write_bytes(good[: len(good) * 6 // 10])  # stops after about 7 of its 12 frames
    out["empty"] = folder / "empty.mp4"
    out["empty"].write_bytes(b"")
    return out


# --------------------------------------------------------------------------- sampling and decoding
def test_sample_indices_uniform_every_and_short_videos() -> None:
    assert sample_indices(100, frames=4) == [12, 37, 62, 87]  # the middle of each quarter
    assert sample_indices(100) == sorted(set(sample_indices(100))) and len(sample_indices(100)) == 32
    assert sample_indices(10, every=3) == [0, 3, 6, 9]
    assert sample_indices(5, frames=32) == [0, 1, 2, 3, 4]  # shorter than asked: every frame
    with pytest.raises(ValueError, match="at least 1"):
        sample_indices(10, every=0)
    with pytest.raises(ValueError, match="not both"):
        VideoOptions(frames=4, every=2)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
@pytest.mark.parametrize("seek_gap", [10_000, 5])  # grab frame by frame / seek across gaps
def test_the_frames_decoded_are_the_frames_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, seek_gap: int
) -> None:
    # Frame i is a flat grey of level 2 * i: the decoded level tells which frame came back.
    frames = [np.full((48, 64, 3), 2 * i, np.uint8) for i in range(100)]
    path = write_video(tmp_path / f"levels{suffix}", frames, fps=25.0)
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (64, 48, 100)
    assert info.fps == pytest.approx(25.0) and info.duration_s == pytest.approx(4.0)
    monkeypatch.setattr(video_module, "SEEK_MIN_GAP", seek_gap)
    wanted = sample_indices(100, frames=6)
    got = list(iter_frames(path, info, wanted))
    assert [f.index for f in got] == wanted
    assert [f.time_s for f in got] == pytest.approx([i / 25.0 for i in wanted])
    levels = [float(f.image.mean()) / 2 for f in got]
    assert levels == pytest.approx(wanted, abs=2.0), (levels, wanted)


def test_bad_videos_raise_errors_naming_file_and_reason(videos: dict[str, Path], tmp_path: Path) -> None:
    cases = {
        "empty": "empty file (0 bytes)",
        "corrupt": "broken or truncated mp4/mov video",
    }
    for name, reason in cases.items():
        with pytest.raises(video_module.UnreadableVideo) as caught:
            probe_video(videos[name])
        assert str(videos[name]) in str(caught.value) and reason in caught.value.reason
    with pytest.raises(video_module.UnreadableVideo, match="file not found"):
        probe_video(tmp_path / "missing.mp4")
    with pytest.raises(video_module.UnreadableVideo, match="video too long: 3.0 s, the limit is 2 s"):
        probe_video(videos["long"], max_seconds=2)
    with pytest.raises(video_module.UnreadableVideo, match="frames too large: 224x224"):
        probe_video(videos["real"], max_pixels=10_000)


# --------------------------------------------------------------------------- tracking and aggregation
def test_iou_tracker_follows_a_moving_box_and_separates_two() -> None:
    tracker = IouTracker()
    ids = [tracker.update([(10 + 8 * t, 10, 110 + 8 * t, 110)]) for t in range(10)]
    assert ids == [[0]] * 10  # 8 px steps of a 100 px box: IoU 0.85, one track
    tracker = IouTracker()
    left, right = (0, 0, 100, 100), (300, 0, 400, 100)
    assert tracker.update([left, right]) == [0, 1]
    assert tracker.update([right, left]) == [1, 0]  # order of detection does not matter
    assert tracker.update([]) == [] and tracker.update([]) == [] and tracker.update([]) == []
    assert tracker.update([left]) == [2]  # unseen for more than max_gap frames: a new track
    assert iou(left, right) == 0.0 and iou(left, left) == 1.0


def test_confident_frames_let_a_quarter_of_fake_looking_frames_decide() -> None:
    probs = [0.95, 0.9, 0.5, 0.52, 0.48, 0.5, 0.55, 0.45]
    assert mean_score(probs) == pytest.approx(np.mean(probs))
    assert confident_score(probs, threshold=0.5) == pytest.approx((0.95 + 0.9) / 2)  # top 2 of 8 look fake
    # Fake in 2 of 8 frames: fake (the mean, 0.3, would call it real).
    fake_part = [0.1, 0.2, 0.3, 0.1, 0.6, 0.7, 0.2, 0.2]
    assert mean_score(fake_part) < 0.5 < confident_score(fake_part, threshold=0.5) == pytest.approx(0.65)
    # Only 1 of 8 looks fake: the two surest real frames give the score.
    real = [0.1, 0.2, 0.3, 0.4, 0.9, 0.3, 0.2, 0.15]
    assert confident_score(real, threshold=0.5) == pytest.approx(0.125)
    assert confident_score([0.1, 0.2, 0.9], threshold=0.5) == pytest.approx(0.9)  # k = 1 of 3
    assert confident_score([0.3], threshold=0.5) == pytest.approx(0.3)


# --------------------------------------------------------------------------- verdicts and timeline
@needs_default
@pytest.mark.parametrize("kind", ["real", "fake"])
def test_real_only_and_fake_only_videos_get_the_verdict_of_their_frames(
    detector: Detector, videos: dict[str, Path], kind: str
) -> None:
    (row,) = detector.predict([videos[kind]], video=VideoOptions(frames=6))
    assert isinstance(row, VideoPrediction) and row.error == "", row
    assert row.label == kind, row.note
    assert row.video is not None and row.video.info.frame_count == 12
    assert len(row.video.sampled) == 6 and len(row.faces) == 1  # the video is a face crop: one track
    (track,) = row.video.tracks
    assert track.label == kind and track.face_count == 6 and track.decides
    assert all((face.prob_fake >= row.threshold) == (kind == "fake") for face in row.video.faces)
    # Each sampled face scores like the frame it came from scored as an image (up to video coding).
    wanted = [f.frame for f in row.video.faces]
    info = probe_video(videos[kind])
    frames = [f.image for f in iter_frames(videos[kind], info, wanted)]
    np.testing.assert_allclose(
        [f.prob_fake for f in row.video.faces], detector.predict_proba(frames)[:, 1], atol=1e-5
    )


@needs_default
def test_faces_found_inside_larger_frames_keep_the_verdict_of_the_crops(
    detector: Detector, clear_faces: dict[str, list[np.ndarray]], tmp_path: Path
) -> None:
    """A clip of real faces gives the same verdict whether its frames are the face crops or larger
    frames in which the faces must be found (the crop spec cuts the same region from both)."""
    import cv2

    crops = [clear_faces["real"][i % 3] for i in range(12)]
    framed = [
        cv2.copyMakeBorder(crop, 120 + 4 * i, 136 - 4 * i, 200, 216, cv2.BORDER_REPLICATE)
        for i, crop in enumerate(crops)
    ]  # 640x480 frames, the face drifting upwards
    rows = detector.predict(
        [write_video(tmp_path / "crops.avi", crops), write_video(tmp_path / "framed.avi", framed)],
        video=VideoOptions(frames=6),
    )
    as_crops, in_frames = rows
    assert as_crops.label == in_frames.label == "real", (as_crops.note, in_frames.note)
    assert in_frames.video is not None and len(in_frames.video.faces) == 6
    assert abs(as_crops.prob_fake - in_frames.prob_fake) < 0.15


@needs_default
@pytest.mark.parametrize(
    "options", [VideoOptions(frames=8), VideoOptions(every=3)], ids=["frames8", "every3"]
)
def test_half_real_half_fake_timeline_switches_where_the_video_does(
    detector: Detector, videos: dict[str, Path], options: VideoOptions
) -> None:
    score = score_video(detector, videos["half"], options=options)
    details = score.prediction.video
    assert details is not None
    timeline = details.timeline()
    threshold = score.prediction.threshold
    assert [p["time_s"] for p in timeline] == pytest.approx([p["frame"] / FPS for p in timeline])
    fake_flags = [p["prob_fake"] >= threshold for p in timeline]
    true_switch = next(k for k, p in enumerate(timeline) if p["frame"] >= 12)  # first sampled fake frame
    seen_switch = next(k for k in range(len(fake_flags)) if all(fake_flags[k:]))
    assert abs(seen_switch - true_switch) <= 2, (fake_flags, true_switch)
    assert not any(fake_flags[: max(0, true_switch - 2)])  # real before the switch
    assert timeline[seen_switch]["time_s"] == pytest.approx(timeline[seen_switch]["frame"] / FPS)
    assert png_size(score.timeline_png or b"")[0] > 400 and png_size(score.contact_sheet_png or b"")[0] > 300
    # Fake for half its length: a fake video (confident frames), though the mean of all frames may not say so.
    assert score.prediction.label == "fake" and details.tracks[0].prob_confident >= threshold
    # The frames that drove the verdict (the contact sheet) are fake frames, the most suspicious first.
    key = details.key_frames
    assert 0 < len(key) <= 8 and all(f.frame >= 12 and f.prob_fake >= threshold for f in key)
    fakes = sorted((f.prob_fake for f in details.faces if f.frame >= 12), reverse=True)
    assert sorted((f.prob_fake for f in key), reverse=True) == fakes[: len(key)]
    plain = score_video(detector, videos["half"], options=replace(options, render=False))
    assert plain.contact_sheet_png is None and plain.prediction.video is not None
    assert [f.frame for f in plain.prediction.video.key_frames] == [f.frame for f in key]


@needs_default
def test_a_face_moving_across_a_larger_frame_is_one_track_and_two_faces_are_two(
    detector: Detector, clear_faces: dict[str, list[np.ndarray]], tmp_path: Path
) -> None:
    # 640x360 frames are not face-crop shaped, so faces are detected in every frame and linked.
    real, fake = (resize_image(clear_faces[k][0], 160) for k in ("real", "fake"))
    one, two = [], []
    for t in range(8):
        canvas = np.full((360, 640, 3), 120, np.uint8)
        paste(canvas, real, 40 + 12 * t, 100)
        one.append(canvas.copy())
        paste(canvas, fake, 440 - 12 * t, 90)
        two.append(canvas)
    single = score_video(detector, write_video(tmp_path / "one.mp4", one), options=VideoOptions(every=1))
    details = single.prediction.video
    assert details is not None and len(details.tracks) == 1 and details.tracks[0].face_count == 8
    xs = [face.box[0] for face in details.faces]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 60  # the box follows the face to the right

    double = score_video(detector, write_video(tmp_path / "two.mp4", two), options=VideoOptions(every=1))
    details = double.prediction.video
    assert details is not None and [t.face_count for t in details.tracks] == [8, 8]
    for track in details.tracks:  # each track stays on one side of the frame: one person each
        centres = [(f.box[0] + f.box[2]) / 2 for f in details.faces if f.track == track.id]
        assert max(centres) < 320 or min(centres) > 320
    # The verdict is the most suspicious track's (like the most suspicious face of a photo).
    assert double.prediction.prob_fake == max(t.prob_fake for t in details.tracks)
    assert double.prediction.video is not None and double.prediction.video.deciding_track in (0, 1)


@needs_default
def test_a_video_without_faces_says_so(detector: Detector, tmp_path: Path) -> None:
    blank = [np.full((360, 640, 3), 90 + 10 * i, np.uint8) for i in range(4)]
    score = score_video(detector, write_video(tmp_path / "blank.mp4", blank), options=VideoOptions(every=1))
    row = score.prediction
    assert row.label == "" and row.prob_fake is None and row.error == "" and row.faces == []
    assert row.note.endswith("no face found") and row.video is not None
    assert [p["prob_fake"] for p in row.video.timeline()] == [None] * 4
    assert png_size(score.contact_sheet_png or b"")[0] > 300  # a sheet that says so, not a crash


# --------------------------------------------------------------------------- CLI
@needs_default
def test_cli_batch_with_bad_videos_scores_the_rest_and_writes_the_reports(
    detector: Detector, videos: dict[str, Path], tmp_path: Path
) -> None:
    image = sorted((DFDC_TEST / "Real").glob("*.jpg"))[0]
    reports = tmp_path / "reports"
    inputs = [
        videos["corrupt"],
        videos["real"],
        videos["empty"],
        image,
        videos["truncated"],
        videos["fake"],
        videos["cut"],
    ]
    result = runner.invoke(
        app,
        ["predict", *map(str, inputs), "--format", "jsonl", "--frames", "4", "--video-out", str(reports)],
    )
    assert result.exit_code == 1, result.output  # some inputs failed, the rest was scored
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["path"] for r in rows] == [str(p) for p in inputs]  # input order, one row each
    corrupt, real, empty, photo, truncated, fake, cut = rows
    assert corrupt["error"] == "broken or truncated mp4/mov video (FFmpeg cannot open it)"
    assert empty["error"] == "empty file (0 bytes)"
    assert truncated["error"] and truncated["label"] == ""
    # Cut short: scored on the frames that decode, and the row says so.
    assert cut["error"] == "" and cut["label"] == "real" and 1 <= cut["video"]["sampled_frames"] < 4
    assert "decoding stopped after frame" in cut["note"] and cut["video"]["warning"]
    assert photo["error"] == "" and "video" not in photo
    for row, kind in ((real, "real"), (fake, "fake")):
        assert row["label"] == kind and row["face_count"] == 1 and row["error"] == ""
        video = row["video"]
        assert video["sampled_frames"] == 4 and len(video["timeline"]) == 4 and video["frame_count"] == 12
        assert video["tracks"][0]["label"] == kind and video["frames"]  # key frames listed
        sheet, timeline = Path(video["files"]["contact_sheet"]), Path(video["files"]["timeline"])
        assert sheet.parent == reports and sheet.name.startswith(Path(row["path"]).stem)
        assert png_size(sheet.read_bytes())[0] > 300 and png_size(timeline.read_bytes())[0] > 400

    table = runner.invoke(app, ["predict", str(videos["fake"]), "--format", "csv", "--frames", "3"])
    assert table.exit_code == 0, table.output
    (csv_row,) = csv.DictReader(io.StringIO(table.stdout))
    assert (
        csv_row["path"] == str(videos["fake"]) and csv_row["label"] == "fake" and csv_row["face_count"] == "1"
    )
    assert (
        float(csv_row["prob_fake"]) >= float(csv_row["threshold"])
        and "3 of 12 frames sampled" in csv_row["note"]
    )
    both = runner.invoke(app, ["predict", str(videos["fake"]), "--frames", "3", "--every", "2"])
    assert both.exit_code == 2 and "not both" in both.output


@needs_default
def test_heatmap_puts_grad_cam_overlays_on_the_contact_sheet(videos: dict[str, Path], tmp_path: Path) -> None:
    from deepfake_detector.inference.video.pictures import FACE_SIDE, HEADER_H, PAD, THUMB_SIDE

    result = runner.invoke(
        app,
        [
            "predict",
            str(videos["fake"]),
            "--model",
            "fast",  # Grad-CAM explains a CNN
            "--frames",
            "2",
            "--format",
            "json",
            "--heatmap",
            str(tmp_path / "hm"),
        ],
    )
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)["predictions"][0]["video"]
    sheet_path = Path(video["files"]["contact_sheet"])
    assert sheet_path.parent == tmp_path / "hm"  # beside the heatmaps when no --video-out
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    x, y = PAD + THUMB_SIDE + PAD, HEADER_H + FACE_SIDE
    heat = sheet[y : y + FACE_SIDE, x : x + FACE_SIDE].astype(int)
    assert heat.std() > 10  # an overlay, not the empty background
    page = (tmp_path / "hm" / "index.html").read_text()
    assert "1 video." in page and "0 images" not in page  # the page counts what it was given
    assert f'href="{sheet_path.name}"' in page and f'href="{Path(video["files"]["timeline"]).name}"' in page


# --------------------------------------------------------------------------- API
@pytest.fixture(scope="module")
def api(videos: dict[str, Path]) -> Iterator[TestClient]:
    small = videos["real"].stat().st_size
    application = create_app("fast", max_video_mb=small * 3 / (1024 * 1024), max_video_s=2.0, timeout_s=600)
    with TestClient(application) as client:
        yield client


@needs_default
def test_api_scores_a_short_video(api: TestClient, videos: dict[str, Path], detector: Detector) -> None:
    with open(videos["fake"], "rb") as fh:
        response = api.post("/v1/predict/video?frames=4", files={"file": ("clip.avi", fh, "video/x-msvideo")})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = detector.predict([videos["fake"]], video=VideoOptions(frames=4))[0]
    assert body["path"] == "clip.avi" and body["label"] == "fake" == expected.label
    assert body["prob_fake"] == pytest.approx(expected.prob_fake, abs=1e-5)
    from deepfake_detector.schemas import load_schema
    from deepfake_detector.service.video_routes import VideoPredictionOut

    # The same verdict fields and rule as an image's answer, and the video route's own schema.
    jsonschema.Draft202012Validator(load_schema("prediction")).validate(body)
    jsonschema.validate(body, VideoPredictionOut.model_json_schema())
    assert_verdict_consistent(body)
    assert body["video"]["frame_count"] == 12 and body["sampled_frames"] == 4 and len(body["timeline"]) == 4
    assert png_size(base64.b64decode(body["contact_sheet_png"]))[0] > 300
    assert png_size(base64.b64decode(body["timeline_png"]))[0] > 400
    limits = api.get("/v1/model").json()["limits"]
    assert limits["max_video_s"] == 2.0 and limits["video_frames"] == 32
    assert "/v1/predict/video" in api.get("/openapi.json").json()["paths"]


@needs_default
def test_api_refuses_over_limit_and_unreadable_videos_clearly(
    api: TestClient, videos: dict[str, Path]
) -> None:
    def post(path: Path, name: str, kind: str = "video/mp4", url: str = "/v1/predict/video"):
        with open(path, "rb") as fh:
            return api.post(url, files={"file": (name, fh, kind)})

    too_long = post(videos["long"], "long.avi")
    assert too_long.status_code == 422
    assert too_long.json()["detail"] == "long.avi: video too long: 3.0 s, the limit is 2 s"

    big = np.random.default_rng(0).integers(0, 256, size=(20, 224, 224, 3), dtype=np.uint8)
    large = write_video(videos["real"].parent / "noisy.avi", list(big))
    assert large.stat().st_size > videos["real"].stat().st_size * 3
    too_big = post(large, "noisy.avi")
    assert too_big.status_code == 413 and "the limit is" in too_big.json()["detail"]

    corrupt = post(videos["corrupt"], "corrupt.mp4")
    assert corrupt.status_code == 422
    assert (
        corrupt.json()["detail"] == "corrupt.mp4: broken or truncated mp4/mov video (FFmpeg cannot open it)"
    )
    assert post(videos["empty"], "empty.mp4").status_code == 422

    to_images = post(videos["fake"], "clip.avi", url="/v1/predict")
    assert to_images.status_code == 415 and "/v1/predict/video" in to_images.json()["detail"]
    image = sorted((DFDC_TEST / "Real").glob("*.jpg"))[0]
    to_videos = post(image, "face.jpg", kind="image/jpeg")
    assert to_videos.status_code == 415 and "send images to /v1/predict" in to_videos.json()["detail"]
