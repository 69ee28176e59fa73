"""``FaceAnalyzer``: faces and their expressions in two lines, the way fer and deepface are called.

    from ferlab import FaceAnalyzer
    faces = FaceAnalyzer().analyze("photo.jpg")   # [FaceResult(box, label, confidence, probabilities), ...]
    timeline = FaceAnalyzer().analyze_video("clip.mp4")   # per tracked face over time
    timeline.summary(); timeline.plot("clip.png")

It is :class:`ferlab.deploy.pipeline.FacePipeline` (detect -> crop FER2013-style -> classify) with the
zoo's default model and the default detector, and inputs taken in any form users hold an image in. Nothing
is downloaded: the model and the detector ship inside installed packages.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ferlab.deploy.detection import DEFAULT_DETECTOR, make_detector
from ferlab.deploy.formats import load_classifier
from ferlab.deploy.media import DEFAULT_MAX_PIXELS, media_kind, read_image
from ferlab.deploy.pipeline import UNCERTAIN, FacePipeline, FaceResult
from ferlab.deploy.timeline import Timeline
from ferlab.errors import FerlabError
from ferlab.zoo import resolve_model

ImageLike = "str | os.PathLike | np.ndarray | PIL.Image.Image"


class FaceAnalyzer:
    """Detect every face in an image and classify its expression.

    - ``model``: a zoo model's name (default: the zoo's default, ``ferlab models list``), a run directory
      or an exported ``.tflite`` / ``.onnx`` / ``.keras`` file.
    - ``detector``: a face detector from :data:`ferlab.deploy.detection.DETECTORS` (default BlazeFace);
      ``"whole"`` when every image is already a face crop.
    - ``min_confidence``: faces whose top probability is below it get the label ``"uncertain"`` (the zoo's
      probabilities are calibrated, so the threshold means what it says); 0 never abstains.
    - ``all_faces``: every face (largest first), or only the largest.
    - ``backend``: ``auto`` (the zoo's default file), ``litert`` or ``onnx`` (the float32 file, else the only
      one of that runtime), or a file kind the model ships (``litert-int8``, ...: ``ferlab.zoo.ZOO_FILES``).

    One analyzer holds one detector: use one per thread.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, detector: str = DEFAULT_DETECTOR,
                 min_confidence: float = 0.0, all_faces: bool = True, backend: str = "auto",
                 max_pixels: int = DEFAULT_MAX_PIXELS, num_threads: int | None = None):
        self.model_file = resolve_model(model, backend)
        self.max_pixels = max_pixels
        self.pipeline = FacePipeline(make_detector(detector), load_classifier(self.model_file, num_threads=num_threads),
                                     all_faces=all_faces, min_confidence=min_confidence)

    @property
    def classes(self) -> list[str]:
        return self.pipeline.classes

    def analyze(self, image: ImageLike) -> list[FaceResult]:
        """The faces of one image, largest first: each with ``.box`` (x, y, w, h), ``.label``,
        ``.confidence``, ``.probabilities`` (in :attr:`classes` order) and ``.to_dict()``.

        ``image``: a file path; a numpy array -- ``(H, W, 3)`` BGR uint8 as ``cv2.imread`` gives, ``(H, W)``
        grayscale, or ``(H, W, 4)`` BGRA; or a PIL image (any mode; converted from RGB).
        """
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Iterable[ImageLike]) -> list[list[FaceResult]]:
        """Several images or video frames: detected one by one, every face classified in one call."""
        located = [self.pipeline.locate(self._frame(image, i)) for i, image in enumerate(images)]
        return [frame.faces for frame in self.pipeline.classify(located)] if located else []

    def analyze_video(self, video: str | os.PathLike, *, every: int = 1, batch_size: int = 64) -> Timeline:
        """Every ``every``-th frame of a video file, its faces tracked from frame to frame and classified (the
        path ``ferlab predict`` takes): a :class:`~ferlab.deploy.timeline.Timeline` with ``.table`` (one row
        per track per frame: time_s, p_<class>..., label), ``.summary()`` (per track: seconds seen, share of
        that time per emotion, dominant emotion), ``.plot("clip.png")`` and ``.figure()`` (matplotlib).
        """
        from ferlab.deploy.predict import predict_paths

        path = Path(video)
        if path.is_file() and media_kind(path) != "video":
            raise FerlabError(f"{path}: not a video file by its extension; give a video (analyze() takes an image)")
        rows = predict_paths([path], self.pipeline, every=every, batch_size=batch_size, max_pixels=self.max_pixels)
        return Timeline.from_rows(rows, self.classes, str(path))

    def _frame(self, image: ImageLike, index: int) -> np.ndarray:
        if isinstance(image, (str, os.PathLike)):
            return read_image(Path(image), self.max_pixels)
        if isinstance(image, np.ndarray):
            return _as_bgr(image, index)
        if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL here
            import cv2

            return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
        raise FerlabError(f"image {index}: expected a file path, a numpy array or a PIL image, got {type(image).__name__}")


def _as_bgr(array: np.ndarray, index: int) -> np.ndarray:
    if array.dtype != np.uint8:
        raise FerlabError(f"image {index}: expected uint8 pixels (0-255), got {array.dtype}; convert it, e.g. "
                          f"(x * 255).clip(0, 255).astype('uint8') for floats in [0, 1]")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return np.ascontiguousarray(array)
    raise FerlabError(f"image {index}: expected (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA, got shape "
                      f"{array.shape}")


__all__ = ["UNCERTAIN", "FaceAnalyzer", "FaceResult", "Timeline"]
