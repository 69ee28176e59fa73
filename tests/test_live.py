"""`ferlab live`: the tracker keeps ids, EMA smoothing stops label flicker, it runs headless, and on a video
made of real FER2013 faces it writes an annotated video and one JSON record per frame.

Run with ``-s`` to see the label flips with and without smoothing and the live FPS / stage latency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_detect import background, fer_test_faces, finds, paste_face, write_video

N_FRAMES = 30


# ------------------------------------------------------------------------------------------------ tracking
def test_tracker_keeps_ids_across_frames():
    from ferlab.deploy.live import FaceTracker

    tracker = FaceTracker(max_missed=3)
    ids = [tracker.update([(20 + 6 * t, 50, 100, 100), (400, 200 - 4 * t, 80, 80)]) for t in range(20)]
    assert all(frame_ids == [1, 2] for frame_ids in ids)
    assert tracker.update([(400, 120, 80, 80), (20 + 6 * 20, 50, 100, 100)]) == [2, 1]  # order does not matter
    for _ in range(3):  # face 1 hidden for 3 frames: kept
        assert tracker.update([(400, 120, 80, 80)]) == [2]
    assert tracker.update([(20 + 6 * 21, 52, 100, 100), (400, 120, 80, 80)]) == [1, 2]
    assert tracker.update([(20 + 6 * 21 + 45, 60, 100, 100), (400, 120, 80, 80)]) == [1, 2]  # fast: by centre
    for _ in range(4):  # hidden for longer than max_missed: forgotten
        tracker.update([(400, 120, 80, 80)])
    assert tracker.update([(190, 60, 100, 100), (400, 120, 80, 80)]) == [3, 2]
    assert tracker.update([(10, 300, 60, 60)]) == [4]  # a new face far away is a new track


def test_iou():
    from ferlab.deploy.live import iou

    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_ema_smoothing_reduces_label_flips():
    """A face whose true class wins narrowly, classified with frame-to-frame noise: the raw labels flip
    often; EMA-smoothed ones rarely, and are right more often."""
    from ferlab.deploy.live import EMASmoother, label_flips

    rng = np.random.default_rng(0)
    truth = np.array([0.34, 0.26, 0.2, 0.12, 0.08])
    frames = [rng.dirichlet(truth * 30) for _ in range(300)]
    raw = [int(np.argmax(p)) for p in frames]
    results = {}
    for alpha in (1.0, 0.5, 0.35, 0.2):
        smoother = EMASmoother(alpha)
        labels = [int(np.argmax(smoother.update(7, p))) for p in frames]
        results[alpha] = (label_flips(labels), float(np.mean(np.array(labels) == 0)))
    print("\nlabel flips in 300 frames (share labelled with the true class): "
          + ", ".join(f"alpha {a}: {f} ({c:.0%})" for a, (f, c) in results.items()))
    assert results[1.0][0] == label_flips(raw)
    assert results[0.35][0] <= results[1.0][0] / 3
    assert results[0.2][0] <= results[0.35][0] <= results[0.5][0]
    assert results[0.35][1] > results[1.0][1] + 0.15


def test_smoother_state_and_validation():
    from ferlab.deploy.live import EMASmoother
    from ferlab.errors import FerlabError

    smoother = EMASmoother(0.5)
    assert np.allclose(smoother.update(1, [1, 0]), [1, 0])
    assert np.allclose(smoother.update(1, [0, 1]), [0.5, 0.5])
    assert np.allclose(smoother.update(2, [0, 1]), [0, 1])  # tracks are independent
    smoother.keep_only([2])
    assert list(smoother.state) == [2]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(FerlabError, match="--smoothing"):
            EMASmoother(bad)


def test_display_detection(monkeypatch):
    from ferlab.deploy.live import display_available

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    available, why = display_available()
    assert available is False and why


def test_draw_tracks_stays_inside_the_frame():
    from ferlab.deploy.detection import Face
    from ferlab.deploy.live import TrackedFace, draw_tracks

    classes = ["angry", "anxious", "happy", "neutral", "sad"]
    frame = np.zeros((120, 160, 3), np.uint8)
    p = np.array([0.1, 0.1, 0.6, 0.1, 0.1], np.float32)
    faces = [TrackedFace(1, Face(100, 0, 60, 60), p, p), TrackedFace(2, Face(-10, 90, 50, 50), p, p)]
    out = draw_tracks(frame, faces, classes, hud="12.0 fps")
    assert out is frame and frame.any()


FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_overlay_writes_every_class_name_in_full_beside_its_bar(monkeypatch):
    """"surprise" was cut to "surpris": each name is drawn whole and ends before its bar starts."""
    from ferlab.deploy.detection import Face
    from ferlab.deploy.live import TrackedFace, draw_tracks
    from ferlab.deploy.live.draw import FONT, NAME_SCALE, TRACK_BGR

    texts, tracks = [], []
    put, rect = cv2.putText, cv2.rectangle

    def put_text(img, text, org, *args, **kwargs):
        texts.append((text, org))
        return put(img, text, org, *args, **kwargs)

    def rectangle(img, p1, p2, colour, *args, **kwargs):
        if tuple(colour) == TRACK_BGR:  # the empty part of a bar: where the bar starts
            tracks.append((p1, p2))
        return rect(img, p1, p2, colour, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", put_text)
    monkeypatch.setattr(cv2, "rectangle", rectangle)
    p = np.full(len(FER7), 1 / len(FER7), np.float32)
    draw_tracks(np.zeros((480, 640, 3), np.uint8), [TrackedFace(1, Face(60, 60, 150, 150), p, p)], FER7)
    names = {text: org for text, org in texts if text in FER7}
    assert set(names) == set(FER7)
    bar_x = {p1[0] for p1, _ in tracks}
    assert len(tracks) == len(FER7) and len(bar_x) == 1  # one bar a class, all starting at the same x
    for name, (x, _) in names.items():
        width = cv2.getTextSize(name, FONT, NAME_SCALE, 1)[0][0]
        assert x + width < min(bar_x), (name, x + width, bar_x)


@pytest.mark.parametrize("classes", [FER7, ["angry", "happy", "neutral", "sad", "surprise"], ["a", "b", "c", "d"]])
def test_class_colours_read_on_the_overlay_and_the_plot(classes):
    """The happy track was pale grey (white text on it, 2:1). Every class colour: at least 3:1 against the
    plot's white and the bars' dark track, its label text at least 4.5:1 (WCAG AA), and no two alike."""
    from ferlab.deploy.live.draw import TRACK_BGR, class_styles
    from ferlab.deploy.timeline import class_colours, contrast

    fills, texts, _ = class_styles(tuple(classes))
    track_rgb = tuple(reversed(TRACK_BGR))
    for name, rgb, fill, text in zip(classes, class_colours(classes), fills, texts):
        assert tuple(reversed(fill)) == rgb  # the overlay draws the plot's colour
        assert contrast(rgb, (255, 255, 255)) >= 3 and contrast(rgb, track_rgb) >= 3, (name, rgb)
        assert contrast(rgb, tuple(reversed(text))) >= 4.5, (name, rgb, text)
    colours = np.array(class_colours(classes), float)
    distance = np.linalg.norm(colours[:, None] - colours[None], axis=2) + np.eye(len(classes)) * 1e9
    assert distance.min() > 60
    if "happy" in classes:
        happy = class_colours(classes)[classes.index("happy")]
        assert max(happy) - min(happy) > 100  # a colour, not a grey


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def live_video(fer2013_paper5, tmp_path_factory):
    """N_FRAMES frames: one FER2013 face moving 8 px a frame, another one still; FFV1 .avi at 15 fps."""
    from ferlab.deploy.detection.haar import HaarDetector

    faces, _ = fer_test_faces(fer2013_paper5, 40, seed=21)
    detector = HaarDetector()
    bg = background("gradient", np.random.default_rng(22))
    moving, still = (30, 30, 192), (470, 300, 144)

    def frame_at(t: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        frame = paste_face(bg.copy(), a, moving[0] + 8 * t, moving[1], moving[2], interpolation=cv2.INTER_NEAREST)
        return paste_face(frame, b, *still, interpolation=cv2.INTER_NEAREST)

    def both_found(a: np.ndarray, b: np.ndarray) -> bool:  # first and last frame: the detector finds both faces
        for t in (0, N_FRAMES - 1):
            found = detector.detect(frame_at(t, a, b))
            if not (any(finds(f, (moving[0] + 8 * t, *moving[1:])) for f in found) and any(finds(f, still) for f in found)):
                return False
        return True

    a, b = next((a, b) for i, a in enumerate(faces) for b in faces[i + 1:] if both_found(a, b))
    frames = [frame_at(t, a, b) for t in range(N_FRAMES)]
    path = tmp_path_factory.mktemp("live-video") / "two-faces.avi"
    write_video(path, frames, fps=15.0)
    return path


class Uniform:
    """A stand-in classifier (no TensorFlow): equal probabilities."""

    classes = ("a", "b", "c")
    backend = "test"

    def predict(self, crops):
        return np.full((len(crops), 3), 1 / 3, np.float32)


def test_run_live_headless_never_crashes(live_video, tmp_path, monkeypatch):
    """Asked for a window where none can be shown, it says so once and runs headless."""
    from ferlab.deploy.detection.haar import HaarDetector
    from ferlab.deploy.live import run_live
    from ferlab.deploy.pipeline import FacePipeline

    monkeypatch.delenv("DISPLAY", raising=False)
    notes = []
    stats = run_live(live_video, FacePipeline(HaarDetector(), Uniform()), display=True, max_frames=5,
                     on_note=notes.append)
    assert stats["frames"] == 5 and stats["display"] is False
    assert len(notes) == 1 and "headless" in notes[0]
    assert set(stats["stages"]) >= {"detect", "crop", "classify", "track", "draw", "total"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.real_data
@pytest.mark.slow
def test_live_cli_writes_annotated_video_and_jsonl(live_video, trained_run, tmp_path):
    from typer.testing import CliRunner

    from ferlab.cli import app

    out, jsonl, stats = tmp_path / "annotated.mp4", tmp_path / "frames.jsonl", tmp_path / "stats.json"
    result = CliRunner().invoke(app, ["live", "--source", str(live_video), "--model", str(trained_run), "--out", str(out),
                                      "--jsonl", str(jsonl), "--stats", str(stats), "--no-display"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    print("\n" + result.stdout)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(N_FRAMES))
    assert np.allclose([r["time_s"] for r in records], np.arange(N_FRAMES) / 15.0, atol=1e-3)
    ids_moving, ids_still = [], []
    for r in records:
        for track in r["tracks"]:
            assert set(track) == {"id", "box", "label", "confidence", "probabilities"}
            probs = track["probabilities"]
            assert abs(sum(probs.values()) - 1) < 1e-3 and track["label"] == max(probs, key=probs.get)
            x, _, w, _ = track["box"]
            (ids_moving if x + w / 2 < 470 else ids_still).append(track["id"])
    print(f"moving face: {len(ids_moving)} detections, ids {sorted(set(ids_moving))}; still face: "
          f"{len(ids_still)} detections, ids {sorted(set(ids_still))}")
    assert len(ids_moving) >= 0.8 * N_FRAMES and len(ids_still) >= 0.8 * N_FRAMES
    assert len(set(ids_moving)) == 1 and len(set(ids_still)) == 1 and set(ids_moving) != set(ids_still)

    cap = cv2.VideoCapture(str(out))
    n, first = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        first = frame if first is None else first
        n += 1
    cap.release()
    assert n == N_FRAMES and first.shape == (480, 640, 3)
    source = cv2.VideoCapture(str(live_video))
    _, original = source.read()
    source.release()
    assert np.abs(first.astype(int) - original).mean() > 1.0  # boxes and bars were drawn
    s = json.loads(stats.read_text())
    assert s["frames"] == N_FRAMES and s["fps"] > 0 and s["backend"] == "keras"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def ferlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("case", ["missing-source", "text-source", "out-exists", "smoothing", "out-extension", "backend"])
def test_live_bad_input_is_one_line(case, tmp_path):
    video = tmp_path / "v.avi"
    write_video(video, [np.zeros((48, 64, 3), np.uint8)] * 2)
    (tmp_path / "run").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"keep")
    (tmp_path / "notes.txt").write_text("remember the milk\n" * 11)
    args, needle = {
        "missing-source": (["--source", str(tmp_path / "nope.mp4")], "nope.mp4"),
        # OpenCV's image-sequence backend used to play a text file as an 11-frame video
        "text-source": (["--source", str(tmp_path / "notes.txt")], "notes.txt: not a video file"),
        "out-exists": (["--out", str(tmp_path / "a.mp4")], "already exists"),
        "smoothing": (["--smoothing", "0"], "--smoothing"),
        "out-extension": (["--out", str(tmp_path / "a.gif")], "--out"),
        "backend": (["--backend", "litert"], "ferlab export"),
    }[case]
    base = ["--source", str(video), "--model", str(tmp_path / "run"), "--no-display"]
    result = ferlab("live", *base, *args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert (tmp_path / "a.mp4").read_bytes() == b"keep"
