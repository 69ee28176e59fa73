"""`ferlab predict` on many inputs goes on past a bad file: each bad file is one line naming it, the others
are analysed and written (atomically), the summary counts the failures and the exit code is 2; `--strict`
stops at the first and writes nothing.

The faces are the embedded synthetic ones (no data set needed), read with the `whole` detector (each image
is one face crop) and the zoo's default model, so the tests run anywhere in a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

N_GOOD = 97


def ferlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def truncated_jpeg() -> bytes:
    """A JPEG cut in half: its header reads, its pixels do not (found only when decoding)."""
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3)).astype(np.uint8)
    data = cv2.imencode(".jpg", frame)[1].tobytes()
    return data[: len(data) // 2]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, list[Path], list[Path]]:
    """A folder of 100 images: 97 synthetic faces (some in a sub-folder) and 3 bad files -- zero bytes, text
    named .jpg (both refused by their header), and a truncated JPEG (refused when decoded)."""
    from ferlab.data.synthetic import load_synthetic

    root = tmp_path_factory.mktemp("folder") / "photos"
    (root / "more").mkdir(parents=True)
    faces = load_synthetic(per_class=14, seed=5).images[:N_GOOD]
    good = []
    for i, face in enumerate(faces):
        path = root / ("more" if i % 4 == 0 else "") / f"face-{i:03d}.png"
        cv2.imwrite(str(path), face)
        good.append(path)
    bad = [root / "face-010-empty.png", root / "more" / "face-020-notes.jpg", root / "face-050-half.jpg"]
    bad[0].write_bytes(b"")
    bad[1].write_text("shopping list, not a photo")
    bad[2].write_bytes(truncated_jpeg())
    return root, good, bad


def test_a_folder_with_three_bad_files_goes_on(photos, tmp_path):
    """100 files, 3 bad: no traceback, one line per bad file naming it and why, every good file's rows
    written (the same rows as predicting the good files alone), failures counted, exit code 2."""
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.pipeline import FacePipeline
    from ferlab.deploy.predict import predict_paths, read_table
    from ferlab.zoo import resolve_model

    root, good, bad = photos
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")  # a user's file beside the results: left as it is
    result = ferlab("predict", str(root), "--detector", "whole", "--out", str(run / "results.csv"), cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    skipped = [line for line in lines if line.startswith("skipped ")]
    assert len(skipped) == 3, result.stderr
    for path, why in zip(sorted(bad), ("not an image", "truncated or corrupt", "not an image")):
        assert any(str(path) in line and why in line for line in skipped), (path, skipped)
    assert lines[-1].startswith("error: 3 of 100 file(s) could not be analysed"), lines[-1]
    assert "3 file(s) failed" in result.stdout

    table = read_table(run / "results.csv")
    assert sorted(table["file"]) == sorted(map(str, good))  # one row per face crop, none lost, none of a bad file
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt", "results.csv"]  # no temporary file left
    assert (run / "notes.txt").read_text() == "mine"

    pipeline = FacePipeline(make_detector("whole"), load_classifier(resolve_model(None)))
    alone = predict_paths(good, pipeline).set_index("file").loc[table["file"]]
    p_cols = [c for c in table.columns if c.startswith("p_")]
    assert np.allclose(table[p_cols].to_numpy(), alone[p_cols].to_numpy(), atol=1e-5)
    assert list(table["label"]) == list(alone["label"])


def test_strict_stops_at_the_first_bad_file_and_writes_nothing(photos, tmp_path):
    root, _, bad = photos
    out = tmp_path / "results.csv"
    result = ferlab("predict", str(root), "--detector", "whole", "--out", str(out), "--strict", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("model:")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert str(sorted(bad)[0]) in errors[0]  # the first bad file in the folder's (sorted) order
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_only_bad_inputs_name_each_and_fail_before_the_model_loads(tmp_path):
    from typer.testing import CliRunner

    from ferlab.cli import app
    from ferlab.errors import FerlabError

    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("text")
    model = tmp_path / "model.onnx"  # never loaded
    model.write_bytes(b"")
    inputs = [str(tmp_path / name) for name in ("a.png", "b.jpg", "c.png")]
    result = CliRunner().invoke(app, ["predict", *inputs, "--model", str(model), "--out", str(tmp_path / "r.csv")])
    assert isinstance(result.exception, FerlabError), result.output
    assert str(result.exception).startswith("none of the 3 input(s) could be analysed")
    for name in ("a.png", "b.jpg", "c.png"):
        assert f"skipped {tmp_path / name}: " in result.output
    assert not (tmp_path / "r.csv").exists()


class Stub:
    """A pipeline stand-in: one face per frame; ``locate`` raises on the ``fail_at``-th frame of ``fail_file``."""

    classes = ["a", "b"]
    min_confidence = 0.0

    def __init__(self, fail_file: str, fail_at: int, error: Exception):
        from ferlab.deploy.detection import make_detector
        from ferlab.deploy.pipeline import FacePipeline

        class Constant:
            classes, backend = ["a", "b"], "test"

            def predict(self, crops):
                return np.tile(np.float32([0.7, 0.3]), (len(crops), 1))

        self.real = FacePipeline(make_detector("whole"), Constant())
        self.fail_file, self.fail_at, self.error = fail_file, fail_at, error
        self.seen: dict[int, int] = {}

    def locate(self, frame):
        key = int(frame[0, 0, 0])  # each file's frames carry their own first pixel
        self.seen[key] = self.seen.get(key, 0) + 1
        if key == self.fail_file and self.seen[key] == self.fail_at:
            raise self.error
        return self.real.locate(frame)

    def classify(self, located):
        return self.real.classify(located)

    def for_video(self):  # a video's frames go through the same stand-in (the real one keeps no state either)
        return self


@pytest.mark.parametrize("error", [ValueError("decoder hiccup"), None])
def test_a_file_failing_part_way_leaves_no_row(tmp_path, error):
    """A video that fails at its 4th frame, after its first frames were classified (batch of one face): none
    of its rows is kept, the files around it are; without ``on_failure`` the run stops with one line."""
    from ferlab.deploy.media import collect_media
    from ferlab.deploy.predict import iter_rows
    from ferlab.errors import FerlabError

    first, second = tmp_path / "first.png", tmp_path / "second.png"
    cv2.imwrite(str(first), np.full((40, 40, 3), 10, np.uint8))
    cv2.imwrite(str(second), np.full((40, 40, 3), 30, np.uint8))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (40, 40))
    for _ in range(6):
        writer.write(np.full((40, 40, 3), 20, np.uint8))
    writer.release()
    inputs = collect_media([first, video, second])
    failure = error or FerlabError(f"{video}: frame 4 cannot be decoded")

    failures = []
    rows = list(iter_rows(inputs, Stub(20, 4, failure), batch_size=1,
                          on_failure=lambda path, why: failures.append((path, why))))
    assert [r["file"] for r in rows] == [str(first), str(second)]
    assert len(failures) == 1 and failures[0][0] == video and str(video) in failures[0][1]
    assert (error is None) or "ValueError: decoder hiccup" in failures[0][1]

    with pytest.raises(FerlabError) as stopped:
        list(iter_rows(inputs, Stub(20, 4, failure), batch_size=1))
    assert str(video) in str(stopped.value) and "\n" not in str(stopped.value)
