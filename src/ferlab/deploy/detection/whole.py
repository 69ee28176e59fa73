"""The "detector" for images that already are a face crop (FER2013's 48x48 faces, a cropped photo): the whole
image is one face, framed as it is. Face detectors often find nothing in such a crop."""

from __future__ import annotations

import numpy as np

from ferlab.deploy.detection.base import Face, FaceDetector


class WholeImageDetector(FaceDetector):
    name = "whole"
    margin = 0.0  # the crop is already framed

    def _detect(self, frame: np.ndarray) -> list[Face]:
        height, width = frame.shape[:2]
        return [Face(0, 0, width, height)]
