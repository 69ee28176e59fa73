"""The face crop contract and the detector interface.

A detector returns :class:`Face` boxes in the frame's pixel coordinates, largest first; :func:`crop_face`
turns a box into the 48x48 grayscale crop the classifiers take (:mod:`ferlab.face`), framed like
FER2013's faces. Each detector's boxes sit differently on a face, so each detector carries its own
``margin`` (the share of the box side added on every side before squaring): on FER2013 test faces
pasted onto backgrounds, the Haar box side is a median 0.955 of the face image's side, so its 2.5% margin
reproduces the framing the models were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferlab.errors import FerlabError
from ferlab.face import FACE_SIZE

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
    import cv2  # here, not at the top: the command line reads this package's registry at start-up

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
    import cv2

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
    """Finds faces in a frame. ``detect`` returns faces largest first; ``margin`` frames its boxes like
    FER2013's crops (see :func:`crop_face`)."""

    name = ""
    margin = DEFAULT_MARGIN

    def detect(self, frame: np.ndarray) -> list[Face]:
        faces = self._detect(frame)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def largest(self, frame: np.ndarray) -> list[Face]:
        """At most one face: the largest."""
        return self.detect(frame)[:1]

    def _detect(self, frame: np.ndarray) -> list[Face]:  # pragma: no cover - abstract
        raise NotImplementedError
