"""The browser's on-device code (deploy/web/static/ondevice) against the Python path, run in Node.

The Python BlazeFace detector runs for real on photographs and a camera-like scene; its model outputs are
recorded pass by pass and replayed to the JavaScript detector, which must compute the same model inputs,
ask for the same passes, and give the same faces and the same 48x48 crops.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from conftest import REPO

from ferlab.deploy.detection import make_detector
from ferlab.deploy.detection.base import crop_face
from ferlab.deploy.web.ondevice import OnDevice
from ferlab.face import FACE_SIZE

NODE = shutil.which("node")
REPLAY = REPO / "tests" / "js" / "blazeface_replay.mjs"
# What the server tells the page (ondevice/manifest.json): the replays take the numbers Python owns from it.
MANIFEST = OnDevice("tests").manifest(classes=[], min_confidence=0.0)


def recording(detector):
    """Wrap the detector's interpreter so every pass's input and outputs are kept."""
    passes = []
    interpreter = detector.interpreter
    invoke = interpreter.invoke

    def recorded_invoke():
        invoke()
        passes.append({"input": interpreter.get_tensor(detector._input)[0].ravel().tolist(),
                       "regressors": interpreter.get_tensor(detector._regressors)[0].ravel().tolist(),
                       "logits": interpreter.get_tensor(detector._logits)[0, :, 0].tolist()})

    interpreter.invoke = recorded_invoke
    return passes


def scenes():
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512, one big face
    wide = np.full((480, 640, 3), 90, np.uint8)  # a small face in a camera frame: found by a tile
    wide[300:420, 60:180] = cv2.resize(astronaut[30:250, 120:340], (120, 120), interpolation=cv2.INTER_AREA)
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return {"astronaut": astronaut, "small-face": wide, "cameraman": camera}


@pytest.mark.parametrize("stream", [False, True], ids=["still", "stream"])
def test_the_browser_detector_and_crops_match_python(tmp_path, stream):
    if NODE is None:
        pytest.skip("node is not installed: the browser code's tests need Node.js (apt-get install nodejs)")
    fixture, expected = {"stream": stream, "manifest": MANIFEST, "frames": []}, []
    for name, frame in scenes().items():
        # What the browser runs: on a still image the whole frame with tiles where it finds nothing (the
        # Python default's pyramid is not ported), on a stream the same search; crops not levelled (not ported).
        detector = make_detector("blazeface" if stream else "blazeface-fast", stream=stream,
                                 detect_every=1 if stream else None, level=False)
        detector = getattr(detector, "detector", detector)
        passes = recording(detector)
        repeat = 3 if stream else 1  # a stream: the third frame uses what the first two saw
        for _ in range(repeat):  # every pass of every repeat is replayed, in order
            faces = detector.detect(frame)
        rgba = cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)
        fixture["frames"].append({"name": name, "width": frame.shape[1], "height": frame.shape[0], "repeat": repeat,
                                  "rgba": base64.b64encode(rgba.tobytes()).decode(), "passes": passes})
        expected.append((name, faces, [crop_face(frame, f, margin=detector.margin) for f in faces], len(passes)))
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    result = subprocess.run([NODE, "--experimental-detect-module", str(REPLAY), str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for (name, faces, crops, n_passes), got in zip(expected, report["frames"]):
        print(f"{name}: {len(faces)} face(s), {n_passes} passes; max |input delta| {got['maxInputDiff']:.4f}")
        assert got["maxInputDiff"] <= 1.01 / 127.5, name  # a pixel off by at most one level after resizing
        assert [(f["x"], f["y"], f["w"], f["h"]) for f in got["faces"]] == [f.box for f in faces], name
        for mine, theirs in zip(got["crops"], crops):
            diff = np.abs(np.asarray(mine, np.int16).reshape(FACE_SIZE, FACE_SIZE) - theirs.astype(np.int16))
            assert diff.max() <= 1, (name, diff.max())
    assert sum(len(f[1]) for f in expected) >= 3  # the scenes have faces


def test_the_browser_tracker_and_smoother_match_python(tmp_path):
    """Faces that move, vanish, come back and cross: the same track ids and smoothed probabilities."""
    if NODE is None:
        pytest.skip("node is not installed: the browser code's tests need Node.js (apt-get install nodejs)")
    from ferlab.deploy.live.tracking import EMASmoother, FaceTracker

    rng = np.random.default_rng(5)
    frames, positions = [], [np.array([100.0, 100.0]), np.array([400.0, 120.0]), np.array([250.0, 300.0])]
    for t in range(80):
        boxes = []
        for k, p in enumerate(positions):
            p += rng.normal(0, 6 if k != 2 else 40, 2)  # the third face jumps: matched by centre distance or lost
            if (t // 9 + k) % 4 != 3:  # each face is missing now and then
                boxes.append([int(p[0]), int(p[1]), 90 + k * 10, 90 + k * 10])
        rng.shuffle(boxes)
        probabilities = rng.dirichlet(np.ones(5), len(boxes)).tolist()
        frames.append({"boxes": boxes, "probabilities": probabilities})
    tracker, smoother, expected = FaceTracker(), EMASmoother(), []
    for frame in frames:
        ids = tracker.update([tuple(b) for b in frame["boxes"]])
        smoothed = [smoother.update(i, np.asarray(p)) for i, p in zip(ids, frame["probabilities"])]
        smoother.keep_only(tracker.tracks)
        expected.append((ids, smoothed))
    path = tmp_path / "frames.json"
    path.write_text(json.dumps({"manifest": MANIFEST, "frames": frames}))
    result = subprocess.run([NODE, "--experimental-detect-module", str(REPO / "tests" / "js" / "tracking_replay.mjs"),
                             str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    for (ids, smoothed), frame in zip(expected, got):
        assert frame["ids"] == ids
        np.testing.assert_allclose(np.asarray(frame["smoothed"]).reshape(-1, 5), np.asarray(smoothed).reshape(-1, 5),
                                   atol=1e-6)
    assert max(max(ids, default=0) for ids, _ in expected) > 3  # faces were lost and came back as new tracks
