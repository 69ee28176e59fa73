"""OpenCV's frontal-face Haar cascades: shipped inside opencv-python-headless 4.x, so they work offline."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ferlab.deploy.detection.base import Face, FaceDetector, suppress_nested, to_gray
from ferlab.errors import FerlabError


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
