"""Face detection: the registry of detectors, and the crop every detector's boxes go through.

Each entry is a name, a one-line summary for the command line's help, whether it needs a model file, and
a factory. ``ferlab predict/live/serve --detector`` list and take exactly these; adding a detector is its
module plus one :func:`register_detector` call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

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
    detect_every: int = 1  # on a video stream: detect every N frames, optical flow carries the boxes between
    stream_options: dict = field(default_factory=dict)  # options for the factory on a video stream


DETECTORS: Registry[DetectorSpec] = Registry("detector", "--detector")
DEFAULT_DETECTOR = "blazeface"


def register_detector(spec: DetectorSpec) -> DetectorSpec:
    return DETECTORS.register(spec.name, spec)


def make_detector(name: str = DEFAULT_DETECTOR, model: str | os.PathLike | None = None, *,
                  stream: bool = False, detect_every: int | None = None, **options) -> FaceDetector:
    """A detector by registry name; ``model`` is its model file when it needs one (--detector-model).

    ``stream=True``: for consecutive frames of one video or camera (stateful, one per stream): the
    registry's stream options, and detection every ``detect_every`` frames (None: the registry's) with
    optical flow carrying the boxes between (:class:`~ferlab.deploy.detection.flow.DetectAndTrack`).
    """
    spec = DETECTORS.get(name)
    if detect_every is not None and not stream:
        raise FerlabError("detect_every: detection every N frames is for a stream of frames (stream=True)")
    if detect_every is not None and detect_every < 1:
        raise FerlabError(f"--detect-every: must be at least 1 (1 = detect on every frame), got {detect_every}")
    if stream:
        options = {**spec.stream_options, **options}
    if spec.model_file is None:
        if model is not None:
            raise FerlabError(f"--detector-model: the {spec.name} detector takes no model file; leave it out "
                              f"or choose a detector that needs one")
        detector = spec.factory(**options)
    elif model is None:
        raise FerlabError(f"--detector {spec.name} needs --detector-model PATH ({spec.model_file})")
    else:
        detector = spec.factory(model, **options)
    if not stream:
        return detector
    from ferlab.deploy.detection.flow import DetectAndTrack

    return DetectAndTrack(detector, spec.detect_every if detect_every is None else detect_every)


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


def _blazeface(**options) -> FaceDetector:
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector

    return BlazeFaceDetector("short", **options)


def _blazeface_fast(**options) -> FaceDetector:
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector

    detector = BlazeFaceDetector("short", **{"tiles": "fallback", **options})
    detector.name = "blazeface-fast"
    return detector


def _blazeface_full(**options) -> FaceDetector:
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector

    return BlazeFaceDetector("full", **{"tiles": "off", **options})  # it is the model for small faces


register_detector(DetectorSpec("blazeface", "MediaPipe's BlazeFace short-range CNN run by LiteRT (default): a still image "
                               "searched whole and in two sizes of tiles, each face checked again (faces from ~24 px "
                               "beside big ones); a video followed from frame to frame", _blazeface,
                               stream_options={"stream": True}))
register_detector(DetectorSpec("blazeface-fast", "BlazeFace searching a still image whole, in tiles only where that "
                               "finds nothing: several times faster on stills, misses small faces beside big ones "
                               "(videos: as blazeface)", _blazeface_fast, stream_options={"stream": True}))
register_detector(DetectorSpec("blazeface-full", "BlazeFace full-range, for whole heads further away (up to ~5 m), "
                               "~2.5x the time; finds fewer bare FER2013 crops than the default",
                               _blazeface_full))
register_detector(DetectorSpec("haar", "OpenCV's Haar cascades, built in", _haar, detect_every=3))
register_detector(DetectorSpec("yunet", "OpenCV's YuNet CNN, needs --detector-model", _yunet,
                               model_file="face_detection_yunet_2023mar.onnx from the OpenCV model zoo", detect_every=2))
register_detector(DetectorSpec("whole", "no detection: each image is one face crop", _whole))

__all__ = ["DEFAULT_DETECTOR", "DEFAULT_MARGIN", "DETECTORS", "DetectorSpec", "Face", "FaceDetector", "crop_face",
           "detector_help", "make_detector", "register_detector", "square_box", "suppress_nested", "to_gray"]
