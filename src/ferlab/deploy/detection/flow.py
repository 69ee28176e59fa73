"""Detect-and-track for video: detect every N frames, carry the boxes in between by optical flow.

:class:`DetectAndTrack` wraps any detector for a stream of consecutive frames (``ferlab live``). On
frames between detections each box moves by the median pyramidal Lucas-Kanade flow of corner points
inside it (OpenCV's ``calcOpticalFlowPyrLK``, ~1 ms per face at 640x480) and scales by the median change
of their spread: the "median flow" tracker. Points that do not come back to where they started when
tracked backwards (forward-backward error > 1 px) are dropped; a face with too few points left is lost,
and the frame is then detected at once; a frame after one with no face at all is always detected. Written here, not
taken from OpenCV's tracker classes: their KCF/MedianFlow trackers live in opencv-contrib, and the
main-module ones (MIL, Nano, Vit) cost 5-20 ms a face or need model files.

With a cheap detector (BlazeFace, ~2.5 ms a pass) ``every=1`` detects on every frame and no flow runs.
"""

from __future__ import annotations

import cv2
import numpy as np

from ferlab.deploy.detection.base import Face, FaceDetector, to_gray

MIN_POINTS = 6  # fewer tracked points than this and the face is lost
MAX_FB_ERROR = 1.0  # px: forward-backward disagreement beyond which a point is dropped
LK = {"winSize": (15, 15), "maxLevel": 3, "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}


class DetectAndTrack(FaceDetector):
    """``detector`` on every ``every``-th frame (and whenever nothing is tracked or a face was lost); the
    median-flow tracker in between. Stateful: one per stream of consecutive frames."""

    def __init__(self, detector: FaceDetector, every: int = 1):
        self.detector = detector
        self.name, self.margin = detector.name, detector.margin
        self.every = max(1, int(every))
        self.since = 0  # frames since the last detection
        self.detections = self.frames = 0
        self._gray: np.ndarray | None = None
        self._faces: list[Face] = []
        self._points: list[np.ndarray] = []

    def detect(self, frame: np.ndarray) -> list[Face]:
        self.frames += 1
        if self.every == 1:
            self.detections += 1
            return self.detector.detect(frame)
        gray = to_gray(frame)
        faces = None
        if self._faces and self.since < self.every and self._gray is not None and self._gray.shape == gray.shape:
            faces = self._carry(gray)
        if faces is None:
            faces = self.detector.detect(frame)
            self.detections += 1
            self.since = 0
            self._faces = faces
            self._points = [_corners(gray, f) for f in faces]
        self.since += 1
        self._gray = gray
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _carry(self, gray: np.ndarray) -> list[Face] | None:
        """Every tracked face moved to this frame, or None when one is lost (then the frame is detected)."""
        moved, points = [], []
        for face, start in zip(self._faces, self._points):
            if len(start) < MIN_POINTS:
                return None
            end, ok, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, start, None, **LK)
            back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, end, None, **LK)
            good = (ok[:, 0] == 1) & (ok_back[:, 0] == 1) & (np.linalg.norm(back - start, axis=2)[:, 0] < MAX_FB_ERROR)
            if good.sum() < MIN_POINTS:
                return None
            a, b = start[good, 0], end[good, 0]
            shift = np.median(b - a, axis=0)
            spread_a = np.linalg.norm(a - a.mean(0), axis=1)
            spread_b = np.linalg.norm(b - b.mean(0), axis=1)
            scale = float(np.median(spread_b / np.maximum(spread_a, 1e-3)))
            scale = scale if 0.8 <= scale <= 1.25 else 1.0
            cx = face.x + face.w / 2 + shift[0]
            cy = face.y + face.h / 2 + shift[1]
            w, h = face.w * scale, face.h * scale
            moved.append(Face(round(cx - w / 2), round(cy - h / 2), round(w), round(h), face.score, face.angle))
            points.append(b.reshape(-1, 1, 2).astype(np.float32))
        self._faces, self._points = moved, points
        return moved


def _corners(gray: np.ndarray, face: Face, max_points: int = 40) -> np.ndarray:
    """Corner points inside the middle of the face box (N, 1, 2) float32: the eyes, nose and mouth move
    with the face; the box's edges may hold background."""
    height, width = gray.shape
    x0, y0 = max(0, face.x + face.w // 5), max(0, face.y + face.h // 5)
    x1, y1 = min(width, face.x + face.w - face.w // 5), min(height, face.y + face.h - face.h // 5)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return np.zeros((0, 1, 2), np.float32)
    found = cv2.goodFeaturesToTrack(np.ascontiguousarray(gray[y0:y1, x0:x1]), max_points, 0.01, max(3, face.w // 20))
    if found is None:
        return np.zeros((0, 1, 2), np.float32)
    return (found + np.array([x0, y0], np.float32)).astype(np.float32)
