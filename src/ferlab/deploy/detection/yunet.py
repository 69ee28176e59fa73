"""OpenCV's YuNet CNN face detector (``cv2.FaceDetectorYN``), from its ONNX model file: more accurate than
Haar on turned and small faces (face_detection_yunet_2023mar.onnx from the OpenCV model zoo)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ferlab.deploy.detection.base import Face, FaceDetector
from ferlab.errors import FerlabError


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
