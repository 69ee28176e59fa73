"""Videos you can look at: per tracked face, emotion over time as a plot and a summary, from `ferlab predict`,
`ferlab live` and `FaceAnalyzer.analyze_video` (one owner: ferlab.deploy.timeline); and predict's per-file
summary saying what its numbers are (shares of faces) and naming ties.

The scripted video: two squares on a grey frame, 20 frames at 10 fps. Square A (bright, moving right) is
in every frame and dims at frame 10; square B (dark, still) is there in frames 5-14 only. A stand-in
detector finds the squares by threshold and a stand-in classifier reads a crop's brightness, so each
face's labels follow from the script: A is "happy" then "surprise" (10 frames each: a tie), B "sad".
CLI tests use the zoo model with the `whole` detector on synthetic faces, and compare the files written
with what the library computes from the rows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import invoke

FPS, N_FRAMES = 10.0, 20
A_BRIGHT, A_DIM, B_DARK, GREY = 230, 170, 40, 110
CLASSES = ["happy", "sad", "surprise"]


def square_frame(t: int) -> np.ndarray:
    frame = np.full((120, 200, 3), GREY, np.uint8)
    x = 10 + 3 * t
    frame[20:60, x:x + 40] = A_BRIGHT if t < 10 else A_DIM
    if 5 <= t < 15:
        frame[60:100, 140:180] = B_DARK
    return frame


def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, frames[0].shape[1::-1])
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def squares(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("squares") / "squares.avi", [square_frame(t) for t in range(N_FRAMES)])


def squares_pipeline():
    from ferlab.deploy.detection import Face, FaceDetector
    from ferlab.deploy.pipeline import FacePipeline

    class Squares(FaceDetector):  # every region far from the grey background is a face
        name, margin = "squares", 0.0

        def _detect(self, frame):
            mask = (np.abs(frame[..., 0].astype(int) - GREY) > 30).astype(np.uint8)
            n, _, boxes, _ = cv2.connectedComponentsWithStats(mask)
            return [Face(int(x), int(y), int(w), int(h)) for x, y, w, h, _ in boxes[1:n]]

    class Brightness:  # bright: happy, dim: surprise, dark: sad
        classes, backend = CLASSES, "test"

        def predict(self, crops):
            m = crops.reshape(len(crops), -1).mean(1)
            k = np.where(m > 200, 0, np.where(m > 120, 2, 1))
            return np.eye(3, dtype=np.float32)[k] * 0.8 + 0.2 / 3

    return FacePipeline(Squares(), Brightness())


def expected_summary() -> dict[str, dict]:
    """What the script puts on screen, per face: frames seen, first/last time, label counts."""
    a = {"frames": N_FRAMES, "first_s": 0.0, "last_s": (N_FRAMES - 1) / FPS, "happy": 10, "surprise": 10, "sad": 0}
    b = {"frames": 10, "first_s": 5 / FPS, "last_s": 14 / FPS, "happy": 0, "surprise": 0, "sad": 10}
    return {"A": a, "B": b}


# ------------------------------------------------------------------------------------------------ predict
def test_predict_tracks_faces_and_summarises_them(squares):
    from ferlab.deploy.media import collect_media
    from ferlab.deploy.predict import predict_paths, video_timelines

    rows = predict_paths([squares], squares_pipeline())
    faces = rows[rows["label"] != ""]
    a_ids = set(faces.loc[faces["y"] < 60, "track"])
    b_ids = set(faces.loc[faces["y"] >= 60, "track"])
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids  # one id per face across the video

    [timeline] = video_timelines(rows, collect_media([squares]), CLASSES)
    summary = timeline.summary().set_index("track")
    assert timeline.period_s == pytest.approx(1 / FPS)
    for name, ids in (("A", a_ids), ("B", b_ids)):
        want, got = expected_summary()[name], summary.loc[ids.pop()]
        assert got["frames"] == want["frames"] and got["seen_s"] == pytest.approx(want["frames"] / FPS)
        assert got["first_s"] == pytest.approx(want["first_s"]) and got["last_s"] == pytest.approx(want["last_s"])
        for c in CLASSES:
            assert got[f"share_{c}"] == pytest.approx(want[c] / want["frames"])
    assert sorted(summary["dominant"]) == ["happy = surprise", "sad"]  # a 50/50 face is a tie, not "happy"


def test_the_plot_reads_at_a_glance(squares, tmp_path):
    """One panel per track; time in seconds on x; each class's colour where (and only where) it was seen;
    blank where the face was not on screen."""
    from ferlab.deploy.media import collect_media
    from ferlab.deploy.predict import predict_paths, video_timelines
    from ferlab.deploy.timeline import class_colours

    [timeline] = video_timelines(predict_paths([squares], squares_pipeline()), collect_media([squares]), CLASSES)
    fig = timeline.figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    axes = [ax for ax in fig.axes if ax.get_title(loc="left").startswith("track")]
    assert len(axes) == 2 and axes[-1].get_xlabel() == "time (s)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == CLASSES
    colour = dict(zip(CLASSES, class_colours(CLASSES)))

    def column(ax, t: float) -> np.ndarray:  # the panel's pixels at time t, top to bottom
        (x, y0), (_, y1) = ax.transData.transform([(t, 0.02), (t, 0.98)])
        height = image.shape[0]
        return image[round(height - y1):round(height - y0), round(x)]

    def share(pixels, c) -> float:  # of the column's height in class c's colour (its probability, 0.87 or 0.07)
        return float((np.abs(pixels.astype(int) - colour[c]).sum(1) < 10).mean())

    a, b = axes  # tracks in id order: A appeared first
    assert "happy = surprise" in a.get_title(loc="left")
    assert share(column(a, 0.45), "happy") > 0.8 and share(column(a, 0.45), "surprise") < 0.1
    assert share(column(a, 1.45), "surprise") > 0.8 and share(column(a, 1.45), "happy") < 0.1
    for t in (0.3, 1.7):  # before B came and after it left: no class drawn
        assert all(share(column(b, t), c) == 0 for c in CLASSES)
    assert share(column(b, 1.0), "sad") > 0.8

    path = timeline.plot(tmp_path / "clip.png")
    assert cv2.imread(str(path)) is not None and sorted(p.name for p in tmp_path.iterdir()) == ["clip.png"]


def test_many_tracks_keep_the_plot_readable_and_the_summary_whole():
    """A crowd (12 tracks): the plot shows the 8 seen longest and says so; the summary keeps all 12, with a
    share for "uncertain" where --min-confidence abstained."""
    from ferlab.deploy.timeline import MAX_PANELS, TimelineRecorder

    recorder = TimelineRecorder(CLASSES)
    for f in range(60):
        recorder.frame(f, f / FPS, [(k, [0.5, 0.3, 0.2], "happy" if f % 3 else "uncertain")
                                    for k in range(12) if f < 60 - 4 * k])
    timeline = recorder.timeline("crowd.mp4", period_s=1 / FPS)
    summary = timeline.summary()
    seen = [range(60 - 4 * k) for k in range(12)]
    assert summary["frames"].tolist() == [len(r) for r in seen]
    assert np.allclose(summary["share_uncertain"], [sum(f % 3 == 0 for f in r) / len(r) for r in seen])
    assert (summary["dominant"] == "happy").all()
    fig = timeline.figure()
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert [t.split(":")[0] for t in titles] == [f"track {k}" for k in range(MAX_PANELS)]  # the longest seen
    assert f"the {MAX_PANELS} seen longest of 12" in fig.texts[0].get_text()


def test_predict_cli_writes_the_timeline_beside_the_results(tmp_path):
    """`predict VIDEO --out run/clip.csv` writes run/clip.timeline.png and run/clip.timeline.csv, whose
    summary is the library's on the rows written; FaceAnalyzer.analyze_video gives the same summary; an
    existing timeline file is refused before any work without --overwrite."""
    from ferlab import FaceAnalyzer
    from ferlab.data.synthetic import load_synthetic
    from ferlab.deploy.predict import read_table
    from ferlab.deploy.timeline import Timeline

    faces = load_synthetic(per_class=2, seed=1).images  # 14 faces, 2 frames each
    video = write_video(tmp_path / "faces.avi", [cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) for f in faces for _ in range(2)])
    out = tmp_path / "run" / "clip.csv"
    result = invoke("predict", str(video), "--detector", "whole", "--out", str(out))
    assert "tracked faces over time" in result.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["clip.csv", "clip.timeline.csv", "clip.timeline.png"]
    assert cv2.imread(str(out.parent / "clip.timeline.png")) is not None

    rows = read_table(out)
    classes = [c[2:] for c in rows.columns if c.startswith("p_")]
    written = pd.read_csv(out.parent / "clip.timeline.csv").drop(columns="source")
    from_rows = Timeline.from_rows(rows, classes, str(video)).summary()
    pd.testing.assert_frame_equal(written, from_rows, check_dtype=False, atol=1e-3)
    assert list(written["track"]) == [1] and written["frames"].iloc[0] == len(faces) * 2

    api = FaceAnalyzer(detector="whole").analyze_video(video).summary()
    pd.testing.assert_frame_equal(api, from_rows, check_dtype=False, atol=1e-6)

    (out.parent / "clip.csv").unlink()
    before = (out.parent / "clip.timeline.png").read_bytes()
    from typer.testing import CliRunner

    from ferlab.cli import app

    refused = CliRunner().invoke(app, ["predict", str(video), "--detector", "whole", "--out", str(out)])
    assert "clip.timeline.png: already exists" in str(refused.exception)
    assert not out.exists() and (out.parent / "clip.timeline.png").read_bytes() == before


def test_predict_summary_says_shares_of_faces_and_names_ties():
    from rich.console import Console

    from ferlab.cli.show import print_predict_summary
    from ferlab.deploy.predict import summarize_files, to_frame

    labels = ["happy", "sad", "sad", "happy"]
    rows = [{"file": "clip.mp4", "frame": f, "time_s": f / 10, "face": 0, "label": label,
             **{f"p_{c}": float(c == label) for c in CLASSES}} for f, label in enumerate(labels)]
    summary = summarize_files(to_frame(rows, CLASSES), CLASSES)
    assert summary["most_frequent"].tolist() == ["happy = sad"]
    assert summary[["share_happy", "share_sad", "share_surprise"]].iloc[0].tolist() == [0.5, 0.5, 0.0]
    console = Console(record=True, width=200)
    print_predict_summary(console, summary, CLASSES)
    text = console.export_text()
    assert "% faces" in text and "not a probability" in text and "most frequent" in text and "happy = sad" in text


# ------------------------------------------------------------------------------------------------ live
def test_live_writes_the_timeline_and_summarises_each_track(squares, tmp_path):
    """run_live: the plot and summary go beside --jsonl; the stats hold each track's summary, which is the
    one the per-frame records give (smoothed labels); an existing timeline file stops it before any work."""
    from ferlab.deploy.live import run_live
    from ferlab.deploy.timeline import dominant
    from ferlab.errors import FerlabError

    jsonl = tmp_path / "run" / "frames.jsonl"
    stats = run_live(squares, squares_pipeline(), jsonl=jsonl, display=False)
    assert sorted(p.name for p in jsonl.parent.iterdir()) == ["frames.jsonl", "frames.timeline.csv",
                                                              "frames.timeline.png"]
    assert stats["outputs"]["timeline_png"] == str(jsonl.parent / "frames.timeline.png")
    counts: dict[int, dict[str, int]] = {}
    for record in map(json.loads, jsonl.read_text().splitlines()):
        for track in record["tracks"]:
            per = counts.setdefault(track["id"], dict.fromkeys(CLASSES, 0))
            per[track["label"]] += 1
    summary = {s["track"]: s for s in stats["timeline"]}
    assert set(summary) == set(counts) and len(summary) == 2
    for track, per in counts.items():
        n = sum(per.values())
        assert summary[track]["frames"] == n and summary[track]["dominant"] == dominant(per)
        assert summary[track]["seen_s"] == pytest.approx(n / FPS)
        for c in CLASSES:
            assert summary[track][f"share_{c}"] == pytest.approx(per[c] / n)
    assert sorted(s["dominant"] for s in stats["timeline"]) == ["happy", "sad"]  # smoothing delays A's change
    csv = pd.read_csv(jsonl.parent / "frames.timeline.csv")
    assert csv["track"].tolist() == sorted(summary)
    assert csv["dominant"].tolist() == [summary[t]["dominant"] for t in sorted(summary)]

    jsonl.unlink()
    with pytest.raises(FerlabError, match="frames.timeline.png: already exists"):
        run_live(squares, squares_pipeline(), jsonl=jsonl, display=False)
    assert not jsonl.exists()


def test_live_cli_prints_each_track_at_the_end(tmp_path):
    from ferlab.data.synthetic import load_synthetic

    faces = load_synthetic(per_class=1, seed=2).images
    video = write_video(tmp_path / "faces.avi", [cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) for f in faces for _ in range(3)])
    jsonl = tmp_path / "frames.jsonl"
    result = invoke("live", "--source", str(video), "--detector", "whole", "--jsonl", str(jsonl), "--no-display")
    labels = [t["label"] for line in jsonl.read_text().splitlines() for t in json.loads(line)["tracks"]]
    counts = {c: labels.count(c) for c in dict.fromkeys(labels)}
    from ferlab.deploy.timeline import dominant

    table = result.stdout[result.stdout.index("tracked faces over time"):]
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith("1 "))
    assert dominant(counts) in row and f"{len(labels) / FPS:.1f}" in row
    assert (tmp_path / "frames.timeline.png").exists() and (tmp_path / "frames.timeline.csv").exists()
