"""Face detection and FER-style crops: a detector interface with two OpenCV implementations.

- :class:`HaarDetector` (default): the frontal-face Haar cascade shipped inside opencv-python-headless 4.x,
  so it works offline with nothing to download.
- :class:`YuNetDetector`: OpenCV's CNN detector (``cv2.FaceDetectorYN``), more accurate on turned and
  small faces, given its ONNX model file (face_detection_yunet_2023mar.onnx from the OpenCV model zoo).

Both return :class:`Face` boxes in the frame's pixel coordinates; :func:`crop_face` turns a box into the
48x48 grayscale crop the classifiers take, framed like FER2013's faces: on FER2013 test faces pasted onto
backgrounds, the Haar box side is a median 0.955 of the face image's side, so a 2.5% margin per side
reproduces the framing the models were trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferlab.errors import FerlabError

FACE_SIZE = 48
DEFAULT_MARGIN = 0.025  # share of the box side added on every side before squaring (see above)


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, w, h) in frame pixels and the detector's score (1.0 for Haar)."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    angle: float = 0.0  # in-plane rotation (degrees, counter-clockwise) at which the face was upright

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    @property
    def area(self) -> int:
        return self.w * self.h


def to_gray(frame: np.ndarray) -> np.ndarray:
    """BGR, BGRA or grayscale uint8 -> grayscale uint8 (OpenCV's BGR order, as cv2.imread/VideoCapture give)."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[..., 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise FerlabError(f"frame: expected a grayscale or BGR image, got shape {frame.shape}")


def square_box(face: Face, frame_shape: tuple[int, ...], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """The square (x, y, side) around a face box grown by ``margin`` per side, centred on the box.

    It may extend past the frame; :func:`crop_face` pads with the border's pixels there.
    """
    side = max(face.w, face.h) * (1.0 + 2.0 * margin)
    cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
    side_i = max(1, round(float(side)))
    return round(float(cx - side / 2.0)), round(float(cy - side / 2.0)), side_i


def crop_face(frame: np.ndarray, face: Face, margin: float = DEFAULT_MARGIN, size: int = FACE_SIZE) -> np.ndarray:
    """A square, grayscale ``size`` x ``size`` uint8 crop of ``face`` with ``margin``, turned upright when the
    face was found rotated (``face.angle``)."""
    gray = to_gray(frame)
    if face.angle:
        cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
        rotation = cv2.getRotationMatrix2D((cx, cy), face.angle, 1.0)
        gray = cv2.warpAffine(gray, rotation, (gray.shape[1], gray.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    x, y, side = square_box(face, gray.shape, margin)
    pad = max(0, -x, -y, x + side - gray.shape[1], y + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x, y = x + pad, y + pad
    crop = gray[y:y + side, x:x + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def suppress_nested(faces: list[Face]) -> list[Face]:
    """Drop every box whose centre lies inside a larger box: one box per person.

    The Haar cascade also fires on part of a face (the mouth and chin) or on a face with its surroundings,
    beside the face itself: on 200 FER2013 test faces pasted onto backgrounds (full-size search), 13 extra
    boxes in 6 frames, all centred inside the face. Two real faces cannot have one's centre inside the
    other's box; the larger box is kept (in 4 of those 6 frames it was the better one).
    """
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.area, reverse=True):
        cx, cy = f.x + f.w / 2.0, f.y + f.h / 2.0
        if not any(k.x <= cx <= k.x + k.w and k.y <= cy <= k.y + k.h for k in kept):
            kept.append(f)
    return kept


class FaceDetector:
    """Finds faces in a frame. ``detect`` returns faces largest first."""

    name = ""

    def detect(self, frame: np.ndarray) -> list[Face]:
        faces = self._detect(frame)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def largest(self, frame: np.ndarray) -> list[Face]:
        """At most one face: the largest."""
        return self.detect(frame)[:1]

    def _detect(self, frame: np.ndarray) -> list[Face]:  # pragma: no cover - abstract
        raise NotImplementedError


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascades (shipped with OpenCV 4.x): a reduced-size search, two fallbacks.

    Measured on FER2013 test faces pasted onto 640x480 backgrounds (scenes as in tests/test_detect.py; 400
    scenes of FER2013's own class mix; a match is a box centred on the face with 0.5-1.5x its side):

    - the frame is searched shrunk so that its shorter side is at most ``search_side`` px (240: 640x480 is
      halved). At full resolution the cascade also fires on parts of large faces (a mouth, an eye: 0.2-0.35
      of the face's side), and such a box keeps the fallbacks below from running. Faces smaller than
      24 / scale px (48 px in a 640x480 frame) are not found; ``search_side=None`` searches at full size;
    - when ``cascade`` (haarcascade_frontalface_default.xml) finds nothing upright, ``fallback``
      (haarcascade_frontalface_alt2.xml) searches again.

      ========================  ======  ===========  ==========
      search                    recall  extra boxes  ms / frame
      ========================  ======  ===========  ==========
      full size, default only   88.8%   26           191
      full size, + fallback     90.5%   30           174
      halved, default only      88.0%   11           98
      halved, + fallback        92.5%   13           120
      ========================  ======  ===========  ==========

      (times on 2 shared, busy cores; on 200 scenes of the class-balanced paper5 test split, 82.0% -> 86.5%);
    - people tilt their heads and the cascades only find upright faces: when nothing is found upright, the
      frame is searched again turned by each of ``angles`` and the first angle that finds faces wins
      (upright search alone found 86%, +-20 degrees 93.5%, in a first measurement on 200 scenes).

    Boxes centred inside a larger box are dropped (:func:`suppress_nested`). No histogram equalisation: it
    made the cascade fire on textured backgrounds (CLAHE too, in one trial: twice the extra boxes, less recall).
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.05, min_neighbors: int = 4, min_size: int = 40,
                 angles: tuple[float, ...] = (20.0, -20.0), cascade: str | os.PathLike | None = None,
                 fallback: str | os.PathLike | None = "haarcascade_frontalface_alt2.xml",
                 fallback_min_neighbors: int = 3, search_side: int | None = 240):
        self.cascade = _load_cascade(cascade or "haarcascade_frontalface_default.xml")
        self.fallback = _load_cascade(fallback) if fallback else None
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.fallback_min_neighbors = fallback_min_neighbors
        self.angles = tuple(angles)
        self.search_side = search_side

    def _detect(self, frame: np.ndarray) -> list[Face]:
        gray = to_gray(frame)
        scale = 1.0
        if self.search_side and min(gray.shape) > self.search_side:
            scale = self.search_side / min(gray.shape)
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_size = max(1, round(self.min_size * scale))
        boxes = [(*f.box, 0.0) for f in self._upright(gray, min_size)]  # (x, y, w, h, angle) in the searched frame
        height, width = gray.shape
        for angle in self.angles if not boxes else ():
            # Turn the frame by -angle about its centre so a face tilted by angle stands upright, search,
            # then map each box centre back; the crop is turned upright again by crop_face.
            turn = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), -angle, 1.0)
            turned = cv2.warpAffine(gray, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
            back = cv2.invertAffineTransform(turn)
            for f in self._upright(turned, min_size):
                cx, cy = back @ np.array([f.x + f.w / 2.0, f.y + f.h / 2.0, 1.0])
                boxes.append((float(cx - f.w / 2.0), float(cy - f.h / 2.0), f.w, f.h, -angle))
            if boxes:
                break
        return suppress_nested([Face(round(x / scale), round(y / scale), round(w / scale), round(h / scale), angle=a)
                                for x, y, w, h, a in boxes])

    def _upright(self, gray: np.ndarray, min_size: int) -> list[Face]:
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(min_size, min_size))
        if len(boxes) == 0 and self.fallback is not None:
            boxes = self.fallback.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                                   minNeighbors=self.fallback_min_neighbors, minSize=(min_size, min_size))
        return [Face(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes]


def _load_cascade(cascade: str | os.PathLike) -> cv2.CascadeClassifier:
    """A cascade XML by path, or by file name in OpenCV's own cv2.data.haarcascades."""
    path = Path(cascade)
    if not path.is_file() and path.name == str(cascade):
        path = Path(cv2.data.haarcascades) / path.name
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise FerlabError(f"{path}: not a readable Haar cascade; give an OpenCV cascade XML "
                          f"(OpenCV 4.x wheels ship them in cv2.data.haarcascades)")
    return classifier


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet CNN detector (``cv2.FaceDetectorYN``), from its ONNX model file."""

    name = "yunet"

    def __init__(self, model: str | os.PathLike, score_threshold: float = 0.7, nms_threshold: float = 0.3):
        model = Path(model)
        if not model.is_file():
            raise FerlabError(f"{model}: YuNet model not found; download face_detection_yunet_2023mar.onnx "
                              f"from the OpenCV model zoo (github.com/opencv/opencv_zoo) and pass its path")
        try:
            self.net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), score_threshold, nms_threshold)
        except cv2.error as exc:
            raise FerlabError(f"{model}: OpenCV cannot load it as a YuNet model ({str(exc).strip().splitlines()[-1]})") from None
        self._size = (320, 320)

    def _detect(self, frame: np.ndarray) -> list[Face]:
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        size = (frame.shape[1], frame.shape[0])
        if size != self._size:
            self.net.setInputSize(size)
            self._size = size
        _, found = self.net.detect(frame)
        if found is None:
            return []
        return [Face(round(float(r[0])), round(float(r[1])), round(float(r[2])), round(float(r[3])), float(r[-1]))
                for r in found]


def make_detector(name: str = "haar", model: str | os.PathLike | None = None, **options) -> FaceDetector:
    """``haar`` (default, offline) or ``yunet`` (needs ``model``, its ONNX file)."""
    if name == "haar":
        return HaarDetector(**options)
    if name == "yunet":
        if model is None:
            raise FerlabError("--detector yunet needs --detector-model PATH (face_detection_yunet_2023mar.onnx)")
        return YuNetDetector(model, **options)
    raise FerlabError(f"--detector: unknown detector {name!r}; choose haar or yunet")
