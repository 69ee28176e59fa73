"""The face crop contract and the detector interface.

A detector returns :class:`Face` boxes in the frame's pixel coordinates, largest first; :func:`crop_face`
turns a box into the 48x48 grayscale crop the classifiers take (:mod:`ferlab.face`), framed like
FER2013's faces. Each detector's boxes sit differently on a face, so each detector carries its own
``margin`` (the share of the box side added on every side before squaring): on FER2013 test faces
pasted onto backgrounds, the Haar box side is a median 0.955 of the face image's side, so its 2.5% margin
reproduces the framing the models were trained on.
"""

from __future__ import annotations

import math
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
    angle: float = 0.0  # in-plane rotation (degrees, counter-clockwise) that turns the face upright (its crop is)

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
    face was found rotated (``face.angle``: a head's roll levelled by BlazeFace's eye key points, or the
    angle at which Haar's turned search found it); pixels past the frame's edge repeat the border.

    Only the window of the frame that the (turned) square covers is made grayscale, and a turned face is cut
    out by one affine warp of that window about the box's centre (a big face shrunk first), not by turning
    the whole frame: a stream pays for it on every face of every frame.
    """
    import cv2

    height, width = frame.shape[:2]
    x, y, side = square_box(face, frame.shape, margin)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    if face.angle:
        cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
        turn = math.radians(face.angle)
        reach = side * (abs(math.cos(turn)) + abs(math.sin(turn))) / 2.0 + 2.0  # the turned square, and a pixel
        x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
        x1, y1 = min(width, math.ceil(cx + reach)), min(height, math.ceil(cy + reach))
        if x1 <= x0 or y1 <= y0:  # the square lies wholly outside the frame: its nearest edge, repeated
            x0, y0 = min(max(0, x0), width - 1), min(max(0, y0), height - 1)
            x1, y1 = x0 + 1, y0 + 1
        gray = to_gray(frame[y0:y1, x0:x1])
        # A big face is first shrunk by area averaging to about twice the crop's size, then turned: the warp's
        # cost grows with its output's pixels, and bilinear sampling is fine at 2x (the last shrink averages).
        out = min(side, 2 * size)
        scale = out / side
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
        sx, sy = gray.shape[1] / (x1 - x0), gray.shape[0] / (y1 - y0)  # the window's exact shrink per axis

        def inside(px: float, py: float) -> tuple[float, float]:  # a frame point in the shrunk window's pixels
            return (px - x0 + 0.5) * sx - 0.5, (py - y0 + 0.5) * sy - 0.5

        rotation = cv2.getRotationMatrix2D(inside(cx, cy), face.angle, 1.0)
        corner = inside(x - 0.5 + 0.5 / scale, y - 0.5 + 0.5 / scale)  # the output's first pixel centre
        rotation[:, 2] -= corner
        crop = cv2.warpAffine(gray, rotation, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if out > size else cv2.INTER_LINEAR)
    rows = np.clip(np.arange(y, y + side), 0, height - 1)  # past the frame: its border pixels repeated
    cols = np.clip(np.arange(x, x + side), 0, width - 1)
    crop = to_gray(frame[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    if crop.shape != (side, side):
        crop = crop[np.ix_(rows - rows[0], cols - cols[0])]
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

    def for_stream(self) -> FaceDetector:
        """This detector set up for consecutive frames of one video (a new one where it keeps state between
        frames; itself where it keeps none, as here)."""
        return self

    def _detect(self, frame: np.ndarray) -> list[Face]:  # pragma: no cover - abstract
        raise NotImplementedError
