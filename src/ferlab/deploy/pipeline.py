"""Frame -> faces -> 48x48 crops -> probabilities: the one detect-crop-classify path.

``ferlab predict`` (files, batching faces across frames), ``ferlab live`` (one frame at a time) and the
web app (worker threads detect, one thread classifies) all run :class:`FacePipeline`. Its two halves can
be called apart: :meth:`FacePipeline.locate` detects and crops one frame (per-thread work: a detector is
not shared), :meth:`FacePipeline.classify` classifies the crops of any number of located frames in one
classifier call (models are much faster per face in batches); :meth:`FacePipeline.analyze` does both for
one frame.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ferlab.deploy.detection import Face, FaceDetector, crop_face
from ferlab.deploy.formats.base import FaceClassifier
from ferlab.errors import FerlabError
from ferlab.face import blank_faces

UNCERTAIN = "uncertain"  # the label of a face whose top probability is below the pipeline's min_confidence


def decide_label(probabilities: np.ndarray, classes: Sequence[str], min_confidence: float = 0.0) -> str:
    """The top class, or :data:`UNCERTAIN` when its probability is below ``min_confidence`` (abstention)."""
    k = int(np.argmax(probabilities))
    return classes[k] if float(probabilities[k]) >= min_confidence else UNCERTAIN


def check_min_confidence(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise FerlabError(f"--min-confidence: must be in [0, 1), got {value}; 0 never abstains")
    return float(value)


@dataclass
class FaceResult:
    """One classified face: its box, class probabilities (in ``classes`` order) and the top label."""

    face: Face
    probabilities: np.ndarray
    classes: list[str]
    min_confidence: float = 0.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) in the image's pixels."""
        return self.face.box

    @property
    def label(self) -> str:
        return decide_label(self.probabilities, self.classes, self.min_confidence)

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def to_dict(self) -> dict:
        return {"box": list(self.face.box), "score": round(self.face.score, 4), "label": self.label,
                "confidence": round(self.confidence, 4),
                "probabilities": {c: round(float(p), 4) for c, p in zip(self.classes, self.probabilities)}}


@dataclass
class FrameResult:
    faces: list[FaceResult]
    timings_ms: dict[str, float] = field(default_factory=dict)  # detect, crop, classify


@dataclass
class Located:
    """A frame's detected faces (in the frame's coordinates) and their crops, before classification."""

    faces: list[Face]
    crops: np.ndarray  # uint8 (len(faces), 48, 48)
    timings_ms: dict[str, float]


class FacePipeline:
    """Detect (all faces, or the largest), crop FER-style, classify.

    ``margin``: the crop framing; None takes the detector's own (:attr:`FaceDetector.margin`).
    ``max_side``: frames whose longer side is larger are shrunk to it for detection and cropping (cost
    grows with the pixels; faces stay well above 48 px), and the boxes are mapped back to the frame.
    ``min_confidence``: a face whose top probability is below it is labelled :data:`UNCERTAIN` (its
    probabilities are kept); zoo models are calibrated, so 0.5 means "right about half the time or better".
    """

    def __init__(self, detector: FaceDetector, classifier: FaceClassifier, *, all_faces: bool = True,
                 margin: float | None = None, max_side: int | None = None, min_confidence: float = 0.0):
        self.detector, self.classifier, self.all_faces = detector, classifier, all_faces
        self.margin = detector.margin if margin is None else margin
        self.max_side = max_side
        self.min_confidence = check_min_confidence(min_confidence)

    @property
    def classes(self) -> list[str]:
        return self.classifier.classes

    def locate(self, frame: np.ndarray) -> Located:
        start = time.perf_counter()
        scale = 1.0
        height, width = frame.shape[:2]
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            frame = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        faces = self.detector.detect(frame) if self.all_faces else self.detector.largest(frame)
        detected = time.perf_counter()
        crops = np.stack([crop_face(frame, f, self.margin) for f in faces]) if faces else blank_faces()
        if scale != 1.0:
            faces = [Face(round(f.x / scale), round(f.y / scale), round(f.w / scale), round(f.h / scale), f.score,
                          f.angle) for f in faces]
        cropped = time.perf_counter()
        return Located(faces, crops, {"detect": (detected - start) * 1e3, "crop": (cropped - detected) * 1e3})

    def classify(self, located: Sequence[Located]) -> list[FrameResult]:
        """Every face of every located frame in one classifier call; the call's time is shared out by faces."""
        start = time.perf_counter()
        crops = [item.crops for item in located if len(item.crops)]
        probs = self.classifier.predict(np.concatenate(crops)) if crops else np.zeros((0, len(self.classes)), np.float32)
        elapsed = (time.perf_counter() - start) * 1e3
        total = max(1, len(probs))
        results, k = [], 0
        for item in located:
            n = len(item.faces)
            faces = [FaceResult(f, p, self.classes, self.min_confidence) for f, p in zip(item.faces, probs[k:k + n])]
            k += n
            share = elapsed * n / total if len(located) > 1 else elapsed
            results.append(FrameResult(faces, {**item.timings_ms, "classify": share}))
        return results

    def for_video(self) -> FacePipeline:
        """This pipeline for the consecutive frames of one video: the same classifier and settings, its detector
        set up for a stream (:meth:`FaceDetector.for_stream`: BlazeFace follows faces from frame to frame
        instead of the still image's thorough search); itself when the detector keeps no state."""
        detector = self.detector.for_stream()
        if detector is self.detector:
            return self
        return FacePipeline(detector, self.classifier, all_faces=self.all_faces, margin=self.margin,
                            max_side=self.max_side, min_confidence=self.min_confidence)

    def analyze(self, frame: np.ndarray) -> FrameResult:
        """One frame, detected, cropped and classified."""
        return self.classify([self.locate(frame)])[0]
