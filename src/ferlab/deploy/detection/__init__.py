"""Face detection: the registry of detectors, and the crop every detector's boxes go through.

Each entry is a name, a one-line summary for the command line's help, whether it needs a model file, and
a factory. ``ferlab predict/live/serve --detector`` list and take exactly these; adding a detector is its
module plus one :func:`register_detector` call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ferlab.deploy.detection.base import (
    DEFAULT_MARGIN,
    Face,
    FaceDetector,
    crop_face,
    square_box,
    suppress_nested,
    to_gray,
)
from ferlab.errors import FerlabError
from ferlab.registry import Registry


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    summary: str  # for --help
    factory: Callable[..., FaceDetector]  # (model path or None, **options) -> detector
    model_file: str | None = None  # the model file it needs (--detector-model), in words; None: needs none


DETECTORS: Registry[DetectorSpec] = Registry("detector", "--detector")
DEFAULT_DETECTOR = "haar"


def register_detector(spec: DetectorSpec) -> DetectorSpec:
    return DETECTORS.register(spec.name, spec)


def make_detector(name: str = DEFAULT_DETECTOR, model: str | os.PathLike | None = None, **options) -> FaceDetector:
    """A detector by registry name; ``model`` is its model file when it needs one (--detector-model)."""
    spec = DETECTORS.get(name)
    if spec.model_file is None:
        if model is not None:
            raise FerlabError(f"--detector-model: the {spec.name} detector takes no model file; leave it out "
                              f"or choose a detector that needs one")
        return spec.factory(**options)
    if model is None:
        raise FerlabError(f"--detector {spec.name} needs --detector-model PATH ({spec.model_file})")
    return spec.factory(model, **options)


def detector_help() -> str:
    """The --detector help text: every registered detector with its summary."""
    return "; ".join(f"{s.name}: {s.summary}" for s in DETECTORS)


def _haar(**options) -> FaceDetector:
    from ferlab.deploy.detection.haar import HaarDetector

    return HaarDetector(**options)


def _yunet(model, **options) -> FaceDetector:
    from ferlab.deploy.detection.yunet import YuNetDetector

    return YuNetDetector(model, **options)


def _whole(**options) -> FaceDetector:
    from ferlab.deploy.detection.whole import WholeImageDetector

    return WholeImageDetector(**options)


register_detector(DetectorSpec("haar", "OpenCV's Haar cascades, built in (default)", _haar))
register_detector(DetectorSpec("yunet", "OpenCV's YuNet CNN, needs --detector-model", _yunet,
                               model_file="face_detection_yunet_2023mar.onnx from the OpenCV model zoo"))
register_detector(DetectorSpec("whole", "no detection: each image is one face crop", _whole))

__all__ = ["DEFAULT_DETECTOR", "DEFAULT_MARGIN", "DETECTORS", "DetectorSpec", "Face", "FaceDetector", "crop_face",
           "detector_help", "make_detector", "register_detector", "square_box", "suppress_nested", "to_gray"]
