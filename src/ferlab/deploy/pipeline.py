"""Frame -> faces -> 48x48 crops -> probabilities: the step shared by predict, live and the web app."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ferlab.deploy.detect import DEFAULT_MARGIN, Face, FaceDetector, crop_face
from ferlab.deploy.runtime import FaceClassifier


@dataclass
class FaceResult:
    """One classified face: its box, class probabilities (in ``classes`` order) and the top label."""

    face: Face
    probabilities: np.ndarray
    classes: list[str]

    @property
    def label(self) -> str:
        return self.classes[int(np.argmax(self.probabilities))]

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


def analyze_frame(frame: np.ndarray, detector: FaceDetector, classifier: FaceClassifier, *,
                  all_faces: bool = True, margin: float = DEFAULT_MARGIN) -> FrameResult:
    """Detect faces (all, or the largest), crop them FER-style and classify them in one batch."""
    start = time.perf_counter()
    faces = detector.detect(frame) if all_faces else detector.largest(frame)
    detected = time.perf_counter()
    crops = np.stack([crop_face(frame, f, margin) for f in faces]) if faces else np.zeros((0, 48, 48), np.uint8)
    cropped = time.perf_counter()
    probs = classifier.predict(crops)
    done = time.perf_counter()
    results = [FaceResult(f, p, classifier.classes) for f, p in zip(faces, probs)]
    return FrameResult(results, {"detect": (detected - start) * 1e3, "crop": (cropped - detected) * 1e3,
                                 "classify": (done - cropped) * 1e3})
