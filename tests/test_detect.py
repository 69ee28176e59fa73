"""Face detection on real FER2013 test faces pasted into 640x480 scenes: recall, false positives, crop
framing, largest vs all faces, and clean errors.

Each scene is one face drawn uniformly from FER2013's test folder (its natural class mix), upscaled to 120-300 px, pasted at a random position on a background
that is smooth noise, a linear gradient or a flat grey with sensor-like noise (slightly tinted, BGR); some
frames have no face at all. Run with ``-s`` to see the measured recall, false positives and crop framing.

Recall depends on the class mix: the Haar cascades miss more sad and fearful faces (heads down, turned
away, hands on the face). On 200 scenes of the class-balanced paper5 test split (angry, anxious, happy,
neutral, sad) HaarDetector found 86.5% (sad faces are the worst); on 400 scenes of FER2013's own mix,
92.5% (see HaarDetector for what each of its fallbacks adds).

The scene helpers (``background`` from bench/detectors.py, ``paste_face``, ...) are shared with
test_predict.py and test_live.py.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from bench.detectors import background  # the scenes' backgrounds, shared with python -m bench detectors

FRAME_SHAPE = (480, 640)  # rows, columns
BACKGROUNDS = ("noise", "gradient", "flat")
N_FACE_FRAMES = 200
N_EMPTY_FRAMES = 24


# ------------------------------------------------------------------------------------------- scene helpers
def paste_face(frame: np.ndarray, face: np.ndarray, x: int, y: int, side: int,
               interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Paste a 48x48 grayscale face, resized to ``side`` px, at (x, y) into a BGR frame (in place)."""
    big = cv2.resize(face, (side, side), interpolation=interpolation)
    frame[y:y + side, x:x + side] = big[..., None]
    return frame


def random_placement(rng: np.random.Generator, side_range: tuple[int, int] = (120, 300),
                     shape: tuple[int, int] = FRAME_SHAPE) -> tuple[int, int, int]:
    side = int(rng.integers(side_range[0], side_range[1] + 1))
    return int(rng.integers(0, shape[1] - side + 1)), int(rng.integers(0, shape[0] - side + 1)), side


def finds(face, paste: tuple[int, int, int]) -> bool:
    """A detection is of the pasted face when its centre is inside the pasted square and its side is within
    0.5-1.5x the square's."""
    x, y, side = paste
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return x <= cx <= x + side and y <= cy <= y + side and 0.5 <= face.w / side <= 1.5


def write_video(path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "FFV1") -> None:
    """Write BGR frames to a video; FFV1 in .avi is lossless (OpenCV's FFmpeg backend decodes it bit-exactly)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()


def fer_test_faces(prepared, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random faces of a prepared set's test split (uint8 (n, 48, 48)) and their label ids."""
    x, y = prepared.arrays("test")
    pick = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return np.ascontiguousarray(x[pick, ..., 0]), y[pick]


def fer_test_folder_faces(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``n`` faces drawn uniformly from FER2013's own test folder (its natural class mix) and their classes."""
    from conftest import FER2013, require

    files = sorted(require(FER2013 / "test", "FER2013 test folder").glob("*/*.jpg"))
    pick = np.random.default_rng(seed).choice(len(files), n, replace=False)
    faces = [cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in pick]
    assert all(f is not None and f.shape == (48, 48) for f in faces)
    return np.stack(faces), [files[i].parent.name for i in pick]

# -------------------------------------------------------------------------------------------------- scenes
@pytest.fixture(scope="module", params=["blazeface", "haar"])
def detector(request):
    """The default detector (BlazeFace, for still images: the whole frame and two sizes of tiles, each face
    verified) and Haar. BlazeFace's crops are not levelled here: the framing tests below compare crops of
    upright pasted faces with the originals pixel by pixel, which a levelled crop turns by the roll its eyes
    give (FER2013's faces are not all level); levelling is tested in test_blazeface.py."""
    from ferlab.deploy.detection import make_detector

    return make_detector(request.param, **({"level": False} if request.param == "blazeface" else {}))


@pytest.fixture(scope="module")
def scenes(detector):
    """N_FACE_FRAMES one-face scenes and N_EMPTY_FRAMES empty ones, each with the detector's boxes."""
    faces, classes = fer_test_folder_faces(N_FACE_FRAMES, seed=1)
    rng = np.random.default_rng(2)
    out = []
    seconds = []
    for i in range(N_FACE_FRAMES + N_EMPTY_FRAMES):
        frame = background(BACKGROUNDS[i % len(BACKGROUNDS)], rng)
        face = paste = label = None
        if i < N_FACE_FRAMES:
            face, paste, label = faces[i], random_placement(rng), classes[i]
            paste_face(frame, face, *paste)
        start = time.perf_counter()
        found = detector.detect(frame)
        seconds.append(time.perf_counter() - start)
        out.append({"frame": frame, "face": face, "paste": paste, "label": label, "found": found,
                    "detector": detector.name})
    print(f"\n{detector.name} detection: {np.mean(seconds) * 1e3:.0f} ms per 640x480 frame (mean of {len(seconds)})")
    return out


@pytest.mark.real_data
def test_recall_and_false_positives(scenes):
    """FER2013 test faces are found in >= 90% of scenes; every other box is a false positive, counted."""
    hits = false_positives = 0
    by_background: dict[str, list[bool]] = {k: [] for k in BACKGROUNDS}
    by_class: dict[str, list[bool]] = {}
    for i, s in enumerate(scenes):
        matched = [f for f in s["found"] if s["paste"] is not None and finds(f, s["paste"])][:1]
        false_positives += len(s["found"]) - len(matched)
        if s["paste"] is not None:
            hits += bool(matched)
            by_background[BACKGROUNDS[i % len(BACKGROUNDS)]].append(bool(matched))
            by_class.setdefault(s["label"], []).append(bool(matched))
    empty_fp = sum(len(s["found"]) for s in scenes if s["paste"] is None)
    recall = hits / N_FACE_FRAMES
    print(f"{scenes[0]['detector']}: recall {recall:.1%} ({hits}/{N_FACE_FRAMES}); "
          + ", ".join(f"{k} {np.mean(v):.1%}" for k, v in by_background.items())
          + f"; false positives {false_positives} in {len(scenes)} frames ({empty_fp} in the {N_EMPTY_FRAMES} "
          f"frames without a face)")
    print("recall per class: " + ", ".join(f"{c} {np.mean(v):.0%} of {len(v)}" for c, v in sorted(by_class.items())))
    assert recall >= 0.90
    assert false_positives <= 0.05 * len(scenes)
    assert empty_fp <= 2


@pytest.mark.real_data
def test_crops_are_48x48_uint8(scenes):
    from ferlab.deploy.detection import Face, crop_face, to_gray

    faces = [(s["frame"], f) for s in scenes for f in s["found"]][:40]
    assert faces
    for frame, face in faces:
        for image in (frame, to_gray(frame), cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)):
            crop = crop_face(image, face)
            assert crop.shape == (48, 48) and crop.dtype == np.uint8
    frame = scenes[0]["frame"]
    for box in (Face(-30, -20, 100, 100), Face(600, 440, 90, 90), Face(5, 5, 10, 10, angle=20.0)):  # padded
        crop = crop_face(frame, box)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8


@pytest.mark.real_data
def test_crop_framing_matches_fer2013(scenes, detector):
    """An upright pasted face, found by the detector, is re-cropped close to the original 48x48 face:
    centre and side within a few percent, and pixels about as close as the original shifted by 2 px
    (far closer than another face). Each detector's own framing (its margin, or BlazeFace's calibrated box
    mapping) is what is tested."""
    from ferlab.deploy.detection import crop_face, square_box

    diffs, shift2, others, offsets, sides = [], [], [], [], []
    upright = [s for s in scenes if s["paste"] is not None]
    for i, s in enumerate(upright):
        match = [f for f in s["found"] if finds(f, s["paste"]) and f.angle == 0]
        if not match:
            continue
        x, y, side = s["paste"]
        cx, cy, cside = square_box(match[0], s["frame"].shape, detector.margin)
        offsets.append(max(abs(cx + cside / 2 - x - side / 2), abs(cy + cside / 2 - y - side / 2)) / side)
        sides.append(cside / side)
        original = s["face"].astype(np.int16)
        diffs.append(np.abs(crop_face(s["frame"], match[0], detector.margin).astype(np.int16) - original).mean())
        shift2.append(np.abs(np.roll(original, 2, axis=1)[:, 2:] - original[:, 2:]).mean())
        others.append(np.abs(upright[(i + 1) % len(upright)]["face"].astype(np.int16) - original).mean())
    print(f"{detector.name} crop framing over {len(diffs)} upright detections: crop side / pasted side median {np.median(sides):.3f} "
          f"(10-90%: {np.percentile(sides, 10):.2f}-{np.percentile(sides, 90):.2f}), centre offset median "
          f"{np.median(offsets):.1%} of the side; mean |pixel difference| to the original: median "
          f"{np.median(diffs):.1f} (original shifted 2 px: {np.median(shift2):.1f}, another face: "
          f"{np.median(others):.1f})")
    # BlazeFace's boxes frame FER2013's faces more loosely than Haar's (measured: centre off by a median 4.6%
    # of the side against 2.8%, pixels 32.5 against 26.7 from the original): its own bounds, from those.
    loose = detector.name == "blazeface"
    assert len(diffs) >= 150
    assert 0.96 <= np.median(sides) <= 1.04
    assert np.median(offsets) <= (0.055 if loose else 0.04)
    assert np.median(diffs) <= (1.6 if loose else 1.25) * np.median(shift2)
    assert np.median(diffs) <= 0.5 * np.median(others)


@pytest.mark.real_data
def test_exact_box_crop_reproduces_the_face(scenes):
    """With the pasted square as the box, the crop is the original face up to resampling: exactly for an
    integer upscale (nearest), within ~2 grey levels for a bicubic one."""
    from ferlab.deploy.detection import Face, crop_face

    cubic, exact = [], []
    rng = np.random.default_rng(3)
    for s in scenes[:30]:
        face = s["face"]
        frame = background("flat", rng)
        x, y, side = random_placement(rng)
        paste_face(frame, face, x, y, side)
        cubic.append(np.abs(crop_face(frame, Face(x, y, side, side), margin=0.0).astype(np.int16) - face).mean())
        side = 48 * int(rng.integers(3, 7))
        paste_face(frame, face, 10, 0, side, interpolation=cv2.INTER_NEAREST)
        exact.append(np.array_equal(crop_face(frame, Face(10, 0, side, side), margin=0.0), face))
    print(f"exact-box crops: bicubic paste mean |difference| {np.mean(cubic):.2f}; integer nearest paste "
          f"identical {np.mean(exact):.0%}")
    assert np.mean(cubic) < 3.0
    assert all(exact)


@pytest.mark.real_data
def test_largest_face_vs_all_faces(scenes, detector):
    """Three faces of different sizes in one frame: detect() returns all, largest first; largest() only the
    biggest; the pipeline follows all_faces."""
    from ferlab.deploy.pipeline import FacePipeline

    found = [s for s in scenes if s["paste"] is not None and len(s["found"]) == 1 and finds(s["found"][0], s["paste"])
             and s["found"][0].angle == 0]
    frame = background("gradient", np.random.default_rng(4))
    placements = [(20, 40, 250), (320, 30, 170), (420, 300, 130)]
    for s, place in zip(found[:3], placements):
        paste_face(frame, s["face"], *place)
    faces = detector.detect(frame)
    print(f"3 pasted faces: detect() found {len(faces)}, sides {[f.w for f in faces]}")
    matched = [next((f for f in faces if finds(f, p)), None) for p in placements]
    assert sum(m is not None for m in matched) >= 2
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)
    assert len(faces) == len(set(faces)) <= 3
    largest = detector.largest(frame)
    assert largest == faces[:1] and finds(largest[0], placements[0])

    class Uniform:  # a stand-in classifier: the pipeline only needs predict and classes
        classes = ("a", "b")

        def predict(self, crops):
            assert crops.shape[1:] == (48, 48)
            return np.full((len(crops), 2), 0.5, np.float32)

    assert len(FacePipeline(detector, Uniform(), all_faces=True).analyze(frame).faces) == len(faces)
    one = FacePipeline(detector, Uniform(), all_faces=False).analyze(frame).faces
    assert [r.face for r in one] == largest


def test_yunet_errors_are_one_line(tmp_path):
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.detection.yunet import YuNetDetector
    from ferlab.errors import FerlabError

    missing = tmp_path / "face_detection_yunet_2023mar.onnx"
    for make in (lambda: make_detector("yunet", missing), lambda: YuNetDetector(missing)):
        with pytest.raises(FerlabError) as err:
            make()
        assert str(missing) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FerlabError, match="--detector-model") as err:
        make_detector("yunet", None)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(FerlabError) as err:
        make_detector("yunet", garbage)
    assert str(garbage) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FerlabError, match="unknown detector"):
        make_detector("mtcnn")


def _registered_detectors():
    from ferlab.deploy.detection import DETECTORS

    return DETECTORS.names()


@pytest.mark.parametrize("name", _registered_detectors())
def test_every_registered_detector_keeps_the_interface(name):
    """Every detector in the registry (a new one is tested here without an edit): made by name (or, when it
    needs a model file, refused without one in one line), boxes inside the frame, largest first, and crops
    of the 48x48 face contract."""
    from ferlab.deploy.detection import DETECTORS, Face, crop_face, make_detector
    from ferlab.errors import FerlabError
    from ferlab.face import FACE_SIZE

    spec = DETECTORS.get(name)
    if spec.model_file is not None:  # no model files offline (yunet): the error is what can be checked here
        with pytest.raises(FerlabError, match=f"--detector {name} needs --detector-model"):
            make_detector(name)
        return
    detector = make_detector(name)
    assert detector.name == name and 0.0 <= detector.margin < 0.5
    # A real face (FER2013's test folder, one every detector here finds), so the box and crop checks below run.
    face = fer_test_folder_faces(8, 0)[0][1]
    frame = background("flat", np.random.default_rng(3))
    paste_face(frame, face, 200, 120, 200)
    faces = detector.detect(frame)
    assert faces, f"{name} found no face"
    if name != "whole":  # `whole` takes the frame as the face; every detector finds the pasted one
        assert any(finds(f, (200, 120, 200)) for f in faces), (name, faces)
    assert all(isinstance(f, Face) for f in faces)
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)
    for f in faces:
        assert 0 <= f.x < FRAME_SHAPE[1] and 0 <= f.y < FRAME_SHAPE[0] and f.w > 0 and f.h > 0
        crop = crop_face(frame, f, detector.margin)
        assert crop.shape == (FACE_SIZE, FACE_SIZE) and crop.dtype == np.uint8
    assert detector.largest(frame) == faces[:1]


def test_whole_image_detector_takes_the_image_as_it_is():
    """For folders of face crops: the whole image is the face, framed as it is (no margin)."""
    from ferlab.deploy.detection import crop_face, make_detector

    crop = np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8)
    detector = make_detector("whole")
    (face,) = detector.detect(crop)
    assert face.box == (0, 0, 48, 48)
    np.testing.assert_array_equal(crop_face(crop, face, detector.margin), crop)
