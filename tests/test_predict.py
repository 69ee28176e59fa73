"""`ferlab predict` on a video made of real FER2013 test faces, on images and folders, and bad input.

The video: 48 FER2013 test faces (paper5 test split), each shown for 3 frames at 10 fps, upscaled by an
integer factor (3-5x, nearest neighbour) and pasted at a random position, moving a few pixels a frame,
onto a 640x480 background; written losslessly (FFV1 in .avi), so the decoded frames are the pasted pixels.

What the labels are compared with is the model's own prediction on the original 48x48 face:

- given where each face really is (an oracle detector with the pasted square), the whole predict path
  (decode, crop, batching, rows) must reproduce those labels for >= 95% of rows (it reproduces all of them);
- with the default detector (BlazeFace; the command line's rows), each row's probabilities must be the
  model's on the row's own box (exactly), and the agreement with the original faces is measured and
  printed, beside the Haar detector's on the same video. It cannot reach 95%: a detector's box frames each
  FER2013 face a little differently from the dataset's own crop (measured in test_detect.py: centre off by
  a median 2.8% of the side for Haar, 4.6% for BlazeFace), and the small model trained for the tests changes
  its label for ~15% of faces when the crop moves by one pixel (see test_label_sensitivity_to_framing). That
  is a property of the detector against FER2013's framing and of the model, not of the pipeline.

Run with ``-s`` to see the measured agreement, misses and false positives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, invoke
from test_detect import BACKGROUNDS, background, fer_test_faces, finds, paste_face, write_video

N_FACES, FRAMES_PER_FACE, FPS = 48, 3, 10.0
MARGIN_PX = 20


def ferlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def classifier(trained_run):
    from ferlab.deploy.formats import load_classifier

    return load_classifier(trained_run)


@pytest.fixture(scope="module")
def face_video(fer2013_paper5, tmp_path_factory):
    """The video file, its faces (N, 48, 48), and per frame the face index and pasted square (x, y, side)."""
    faces, _ = fer_test_faces(fer2013_paper5, N_FACES, seed=7)
    rng = np.random.default_rng(8)
    frames, truth = [], []
    for i, face in enumerate(faces):
        bg = background(BACKGROUNDS[i % len(BACKGROUNDS)], rng)
        side = 48 * int(rng.integers(3, 6))
        x = int(rng.integers(MARGIN_PX, 640 - side - MARGIN_PX))
        y = int(rng.integers(MARGIN_PX, 480 - side - MARGIN_PX))
        dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
        for k in range(FRAMES_PER_FACE):
            frame = paste_face(bg.copy(), face, x + k * dx, y + k * dy, side, interpolation=cv2.INTER_NEAREST)
            frames.append(frame)
            truth.append((i, (x + k * dx, y + k * dy, side)))
    path = tmp_path_factory.mktemp("predict-video") / "faces.avi"
    write_video(path, frames, FPS)
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok and np.array_equal(first, frames[0]), "FFV1 should decode bit-exactly"
    return path, faces, truth


@pytest.fixture(scope="module")
def cli_rows(face_video, trained_run, tmp_path_factory):
    """`ferlab predict VIDEO --model RUN --out results.csv`, read back."""
    from ferlab.deploy.predict import read_table

    out = tmp_path_factory.mktemp("predict-out") / "results.csv"
    result = invoke("predict", str(face_video[0]), "--model", str(trained_run), "--out", str(out))
    print("\n" + result.stdout)
    return read_table(out)


def frame_matches(rows, truth):
    """Per frame: (the row matching the pasted face or None, number of other face rows)."""
    out = []
    by_frame = {f: g for f, g in rows.groupby("frame")}
    for frame, (_, paste) in enumerate(truth):
        group = by_frame[frame]
        faces = group[group["label"] != ""]
        match = [r for r in faces.itertuples() if finds(r, paste)]
        out.append((match[0] if match else None, len(faces) - min(1, len(match))))
    return out


@pytest.mark.real_data
@pytest.mark.slow
def test_one_row_per_face_per_frame(cli_rows, face_video, classifier):
    _, _, truth = face_video
    rows = cli_rows
    expected = ["file", "frame", "time_s", "face", "track", "x", "y", "w", "h", "score", "angle",
                *[f"p_{c}" for c in classifier.classes], "label", "confidence"]
    assert list(rows.columns) == expected
    assert sorted(rows["frame"].unique()) == list(range(len(truth)))
    assert np.allclose(rows["time_s"], rows["frame"] / FPS)
    faceless = rows[rows["label"] == ""]
    assert faceless["x"].isna().all() and faceless[f"p_{classifier.classes[0]}"].isna().all()
    assert not (faceless["frame"].isin(rows.loc[rows["label"] != "", "frame"])).any()  # one row for a faceless frame
    faces = rows[rows["label"] != ""]
    assert faces.groupby("frame")["face"].apply(lambda s: list(s) == list(range(len(s)))).all()
    p = faces[[f"p_{c}" for c in classifier.classes]].to_numpy()
    assert np.allclose(p.sum(1), 1.0, atol=1e-3)
    assert (faces["label"].to_numpy() == np.array(classifier.classes)[p.argmax(1)]).all()
    matches = frame_matches(rows, truth)
    missed = sum(m is None for m, _ in matches)
    extra = sum(n for _, n in matches)
    print(f"{len(truth)} frames: face found in {len(truth) - missed}, missed in {missed} "
          f"({len(faceless)} frames without any face row), {extra} other face rows (false positives)")
    assert missed <= 0.20 * len(truth)  # recall on paper5's class mix: Haar 86.5%, BlazeFace higher (test_detect.py)
    # BlazeFace's box on a bare FER2013 crop (no hair, no chin) is now and then ~1.5x the pasted square: that
    # face counts as missed and its box as another row (measured: 13 of 144 frames; Haar: 3 of 48 first frames)
    assert extra <= 0.10 * len(truth)


@pytest.mark.real_data
@pytest.mark.slow
def test_labels_match_the_original_faces(cli_rows, face_video, classifier):
    """Oracle boxes: >= 95% of rows (all, measured) get the label of the original face. Default detector's
    boxes: each row is the model on its own box (exactly); agreement with the original faces is printed,
    with Haar's beside it (see the module doc)."""
    from ferlab.deploy.detection import DEFAULT_DETECTOR, Face, FaceDetector, crop_face, make_detector
    from ferlab.deploy.pipeline import FacePipeline
    from ferlab.deploy.predict import predict_paths

    path, faces, truth = face_video
    original = classifier.predict(faces)
    reference = original.argmax(1)

    class Oracle(FaceDetector):  # the pasted square of each frame, in frame order
        def __init__(self):
            self.frame = 0

        def _detect(self, frame):
            _, (x, y, side) = truth[self.frame]
            self.frame += 1
            return [Face(x, y, side, side)]

    rows = predict_paths([path], FacePipeline(Oracle(), classifier, margin=0.0), batch_size=32)
    assert len(rows) == len(truth) and (rows["label"] != "").all()
    p = rows[[f"p_{c}" for c in classifier.classes]].to_numpy()
    face_of_row = np.array([truth[f][0] for f in rows["frame"]])
    oracle_agreement = float((p.argmax(1) == reference[face_of_row]).mean())
    oracle_dp = float(np.abs(p - original[face_of_row]).max())

    cap = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    margin = make_detector(DEFAULT_DETECTOR).margin
    face_rows = cli_rows[cli_rows["label"] != ""]
    crops = np.stack([crop_face(decoded[r.frame], Face(int(r.x), int(r.y), int(r.w), int(r.h), angle=r.angle), margin)
                      for r in face_rows.itertuples()])
    own = classifier.predict(crops)
    got = face_rows[[f"p_{c}" for c in classifier.classes]].to_numpy()
    own_dp = float(np.abs(own - got).max())

    def agreement(table) -> tuple[float, int]:
        agree = [match.label == classifier.classes[reference[truth[frame][0]]]
                 for frame, (match, _) in enumerate(frame_matches(table, truth)) if match is not None]
        return float(np.mean(agree)), len(agree)

    default_agreement, n_default = agreement(cli_rows)
    haar_agreement, n_haar = agreement(predict_paths([path], FacePipeline(make_detector("haar"), classifier)))
    print(f"labels vs the model on the original faces: oracle boxes {oracle_agreement:.1%} of {len(rows)} rows "
          f"(max |dp| {oracle_dp:.2g}); {DEFAULT_DETECTOR} boxes {default_agreement:.1%} of {n_default} rows with "
          f"the face found (Haar boxes {haar_agreement:.1%} of {n_haar}); {DEFAULT_DETECTOR} rows vs the model on "
          f"their own crops: max |dp| {own_dp:.2g}")
    assert oracle_agreement >= 0.95
    assert oracle_dp < 1e-3
    assert own_dp < 1e-3
    assert default_agreement >= 0.5  # measured, printed; see the module doc for why not 95%


@pytest.mark.real_data
@pytest.mark.slow
def test_label_sensitivity_to_framing(fer2013_paper5, classifier):
    """How much of the Haar disagreement is the model: its labels on FER2013 test faces moved by 1-2 px,
    or zoomed by 4%, against its labels on the faces as they are."""
    faces, _ = fer_test_faces(fer2013_paper5, 400, seed=9)
    reference = classifier.predict(faces).argmax(1)

    def agreement(transform) -> float:
        return float((classifier.predict(np.stack([transform(f) for f in faces])).argmax(1) == reference).mean())

    def zoom(f, s):
        m = cv2.getRotationMatrix2D((23.5, 23.5), 0, s)
        return cv2.warpAffine(f, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def shift(f, dx):
        return cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, 0]]), (48, 48), borderMode=cv2.BORDER_REPLICATE)

    measured = {"1 px shift": agreement(lambda f: shift(f, 1)), "2 px shift": agreement(lambda f: shift(f, 2)),
                "4% zoom in": agreement(lambda f: zoom(f, 1.04)), "unchanged": agreement(lambda f: f)}
    print("label agreement with the unchanged faces: " + ", ".join(f"{k} {v:.1%}" for k, v in measured.items()))
    assert measured["unchanged"] == 1.0


@pytest.mark.real_data
@pytest.mark.slow
def test_images_folders_and_jsonl(fer2013_paper5, classifier, trained_run, tmp_path):
    """Images and nested folders (non-images skipped), faceless images counted, --largest, and JSON lines."""
    from ferlab.deploy.detection.haar import HaarDetector
    from ferlab.deploy.pipeline import FacePipeline
    from ferlab.deploy.predict import predict_paths, read_table, summarize_files

    faces, _ = fer_test_faces(fer2013_paper5, 40, seed=11)
    detector = HaarDetector()
    rng = np.random.default_rng(12)
    found = []  # faces the detector finds alone in a frame
    for face in faces:
        frame = paste_face(background("gradient", rng), face, 200, 100, 200)
        if [f for f in detector.detect(frame) if finds(f, (200, 100, 200))] and len(detector.detect(frame)) == 1:
            found.append(face)
        if len(found) == 3:
            break
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    cv2.imwrite(str(folder / "one.png"), paste_face(background("flat", rng), found[0], 100, 80, 240))
    two = paste_face(background("gradient", rng), found[1], 20, 60, 260)
    cv2.imwrite(str(folder / "nested" / "two.jpg"), paste_face(two, found[2], 380, 180, 150), [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(folder / "nested" / "empty.png"), background("noise", rng))
    (folder / "notes.txt").write_text("not an image")
    single = tmp_path / "single.bmp"
    cv2.imwrite(str(single), paste_face(background("flat", rng), found[0], 300, 150, 180))

    rows = predict_paths([folder, single], FacePipeline(detector, classifier))
    counts = rows.groupby("file")["label"].apply(lambda s: int((s != "").sum())).to_dict()
    assert counts == {str(folder / "nested" / "empty.png"): 0, str(folder / "nested" / "two.jpg"): 2,
                      str(folder / "one.png"): 1, str(single): 1}
    assert rows["time_s"].isna().all() and (rows["frame"] == 0).all()
    largest = predict_paths([folder / "nested" / "two.jpg"], FacePipeline(detector, classifier, all_faces=False))
    assert len(largest) == 1 and largest["w"].iloc[0] == rows.loc[rows["file"].str.endswith("two.jpg"), "w"].max()
    summary = summarize_files(rows, classifier.classes)
    assert summary.set_index("file").loc[str(folder / "nested" / "empty.png"), "frames_without_face"] == 1

    out = tmp_path / "results.jsonl"
    result = invoke("predict", str(folder), str(single), "--model", str(trained_run), "--out", str(out),
                    "--detector", "haar")  # the detector of the rows above
    assert "without a face" in result.output
    back = read_table(out)
    assert len(back) == len(rows) and list(back["label"]) == list(rows["label"])
    assert np.allclose(back["p_happy"].fillna(-1), rows["p_happy"].fillna(-1), atol=1e-5)


@pytest.mark.parametrize("case", ["missing", "not-image", "corrupt", "out-extension", "out-exists", "yunet", "unknown-model"])
def test_bad_input_is_one_line(case, tmp_path):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.zeros((60, 60, 3), np.uint8))
    model = tmp_path / "model.onnx"  # never loaded: every case fails before the model
    model.write_bytes(b"")
    args = {"missing": ([str(tmp_path / "nope.jpg")], "nope.jpg"),
            "not-image": ([str(tmp_path / "notes.txt")], "notes.txt"),
            "corrupt": ([str(tmp_path / "broken.jpg")], "broken.jpg"),
            "out-extension": ([str(image), "--out", str(tmp_path / "r.xlsx")], "--out"),
            "out-exists": ([str(image), "--out", str(tmp_path / "r.csv")], "already exists"),
            "yunet": ([str(image), "--detector", "yunet", "--detector-model", str(tmp_path / "y.onnx")], "y.onnx"),
            "unknown-model": ([str(image), "--model", "no-such-model"], "--model no-such-model")}[case]
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "r.csv").write_text("keep me")
    model_args = [] if case == "unknown-model" else ["--model", str(model)]
    result = ferlab("predict", *args[0], *model_args, cwd=tmp_path)
    assert_one_line_error(result, args[1])
    assert (tmp_path / "r.csv").read_text() == "keep me"
    assert not (tmp_path / "r.xlsx").exists()
