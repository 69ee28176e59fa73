"""The browser's on-device code (deploy/web/static/ondevice) against the Python path, run in Node.

The Python BlazeFace detector runs for real on photographs and camera-like scenes, as Python's defaults
run it (a still image: the pyramid with verification; a stream: the followed search; crops levelled by the
eyes); its model outputs are recorded pass by pass and replayed to the JavaScript detector, which must
compute the same model inputs, ask for the same passes in the same order, and give the same faces and the
same 48x48 crops.
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

from ferlab.deploy.detection import blazeface, make_detector
from ferlab.deploy.detection.base import crop_face
from ferlab.deploy.web.ondevice import OnDevice
from ferlab.face import FACE_SIZE

NODE = shutil.which("node")
REPLAY = REPO / "tests" / "js" / "blazeface_replay.mjs"
# What the server tells the page (ondevice/manifest.json): the replays take the numbers Python owns from it.
MANIFEST = OnDevice("tests").manifest(classes=[], min_confidence=0.0)


def recording(detector, monkeypatch):
    """Wrap the detector's interpreter so every pass's input (as the uint8 pixels it was made of) and outputs
    (float32) are kept, base64 (a still image's pyramid is some 60-80 passes), and whether the pass looked at
    a region the pyramid turned level (cv2.warpAffine in the detector's module: that region's pass and its
    mirror image's)."""
    passes, turned = [], set()
    interpreter = detector.interpreter
    invoke = interpreter.invoke

    class Watched:  # the detector module's cv2, noting the passes that look at a turned region
        def __getattr__(self, name):
            return getattr(cv2, name)

        def warpAffine(self, *args, **kwargs):  # cv2's name
            turned.update({len(passes), len(passes) + 1})
            return cv2.warpAffine(*args, **kwargs)

    monkeypatch.setattr(blazeface, "cv2", Watched())

    def b64(array: np.ndarray) -> str:
        return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()

    def recorded_invoke():
        invoke()
        pixels = np.rint((interpreter.get_tensor(detector._input)[0] + 1.0) * 127.5).astype(np.uint8)  # x / 127.5 - 1
        passes.append({"input": b64(pixels), "regressors": b64(interpreter.get_tensor(detector._regressors)[0]),
                       "logits": b64(interpreter.get_tensor(detector._logits)[0, :, 0]), "turned": len(passes) in turned})

    interpreter.invoke = recorded_invoke
    return passes


def scenes():
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512, one big face
    face = astronaut[30:250, 120:340]
    wide = np.full((480, 640, 3), 90, np.uint8)  # a small face in a camera frame: found by a tile
    wide[300:420, 60:180] = cv2.resize(face, (120, 120), interpolation=cv2.INTER_AREA)
    group = wide.copy()  # beside a big face, small ones: the whole frame finds the big one alone, the pyramid all
    group[40:280, 340:580] = cv2.resize(face, (240, 240), interpolation=cv2.INTER_AREA)
    group[60:124, 200:264] = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    turn = cv2.getRotationMatrix2D((256.0, 256.0), 25.0, 1.0)  # a rolled head: verified and cropped levelled
    rolled = cv2.warpAffine(astronaut, turn, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return {"astronaut": astronaut, "small-face": wide, "big-and-small": group, "rolled": rolled, "cameraman": camera}


@pytest.mark.parametrize("stream", [False, True], ids=["still", "stream"])
def test_the_browser_detector_and_crops_match_python(tmp_path, monkeypatch, stream):
    if NODE is None:
        pytest.skip("node is not installed: the browser code's tests need Node.js (apt-get install nodejs)")
    fixture, expected = {"stream": stream, "manifest": MANIFEST, "frames": []}, []
    for name, frame in scenes().items():
        # What the browser runs: Python's defaults, as the page's worker sets its detectors up from the manifest
        # (a still image: the pyramid; a stream: the followed search), crops levelled by the eyes.
        detector = make_detector("blazeface", stream=stream, detect_every=1 if stream else None)
        detector = getattr(detector, "detector", detector)
        passes = recording(detector, monkeypatch)
        repeat = 3 if stream else 1  # a stream: the third frame uses what the first two saw
        for _ in range(repeat):  # every pass of every repeat is replayed, in order
            faces = detector.detect(frame)
        rgba = cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)
        fixture["frames"].append({"name": name, "width": frame.shape[1], "height": frame.shape[0], "repeat": repeat,
                                  "rgba": base64.b64encode(rgba.tobytes()).decode(), "passes": passes})
        expected.append((name, faces, [crop_face(frame, f, margin=detector.margin) for f in faces],
                         [p["turned"] for p in passes]))
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    result = subprocess.run([NODE, "--experimental-detect-module", str(REPLAY), str(path)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    size = 3 * detector.model.input_size ** 2  # values in one model input
    for (name, faces, crops, turned), got in zip(expected, report["frames"], strict=True):
        diffs = [np.abs(np.asarray(mine, np.int16).reshape(FACE_SIZE, FACE_SIZE) - theirs.astype(np.int16))
                 for mine, theirs in zip(got["crops"], crops)]
        most = max(m for m, _ in got["inputs"])
        plain = max((m for (m, _), t in zip(got["inputs"], turned) if not t), default=0.0)
        off = [n for (_, n), t in zip(got["inputs"], turned) if t]
        rolls = ", ".join(f"{f.angle:+.1f}" for f in faces)
        print(f"{name}: {len(faces)} face(s) (roll {rolls}), {len(turned)} passes ({sum(turned)} turned level); "
              f"max |input delta| {most / 127.5:.4f} ({plain:.2f} levels unturned, {most:.2f} turned: {sum(off)} "
              f"values); max crop delta {max((int(d.max()) for d in diffs), default=0)} "
              f"({sum(int((d > 0).sum()) for d in diffs)} of {len(diffs) * FACE_SIZE ** 2} pixels)")
        assert got["passes"] == len(turned), name  # the same passes (their inputs compared one by one, in order)
        # The same model inputs to the byte: OpenCV's resizing and grey conversion are rewritten step by step.
        # Except where the pyramid verifies a proposal turned level: the eyes' roll, from float32 key points in
        # Python and float64 ones here, differs by ~1e-6 degrees, which moves a few of cv2.warpAffine's samples
        # (positions cut to 1/32 px) one step, a sample on a sharp edge by up to 255 / 32 levels: under 1% of them.
        assert plain < 0.5, (name, plain)
        assert most <= 255 / 32 and max(off, default=0) <= size // 100, (name, most, off)
        assert [(f["x"], f["y"], f["w"], f["h"]) for f in got["faces"]] == [f.box for f in faces], name
        # The rolls agree to float32's precision (the key points' type in Python).
        np.testing.assert_allclose([f["angle"] for f in got["faces"]], [f.angle for f in faces], atol=1e-4,
                                   err_msg=name)
        # The crops (levelled ones too) within one grey level: the same few warp samples may move a step.
        assert max((int(d.max()) for d in diffs), default=0) <= 1, (name, [int(d.max()) for d in diffs])
    found = {name: faces for name, faces, _, _ in expected}
    assert all(found.values()), {name: len(faces) for name, faces in found.items()}  # every scene has faces
    assert any(abs(f.angle) >= 10 for f in found["rolled"])  # a rolled head: levelled crops are compared
    if not stream:  # the pyramid finds the small faces beside the big one (the whole frame alone: the big one)
        assert len(found["big-and-small"]) >= 3, found["big-and-small"]
        assert any(turned for *_, turned in expected)  # and some proposals were verified turned level


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
