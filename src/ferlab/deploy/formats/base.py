"""The classifier interface every runtime implements: raw 48x48 faces -> class probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlab.errors import FerlabError
from ferlab.evaluate.latency import LATENCY_RUNS, LATENCY_WARMUP, median_latency_ms
from ferlab.face import as_face_batch


class FaceClassifier:
    """Raw 48x48 faces -> probabilities. A runtime implements ``_predict`` on float32 (N, 48, 48, 1)."""

    format: str = ""  # its registry name (ferlab.deploy.formats.FORMATS)

    def __init__(self, path: Path, classes: list[str]):
        self.path = path
        self.classes = list(classes)

    @property
    def backend(self) -> str:  # the name the command line's --backend and the web app's health use
        return self.format

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 (N, num_classes); an empty batch gives (0, num_classes)."""
        x = as_face_batch(faces)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        probs = np.asarray(self._predict(x), np.float32)
        if probs.shape != (len(x), len(self.classes)):
            raise FerlabError(f"{self.path}: model outputs shape {probs.shape}, expected "
                              f"({len(x)}, {len(self.classes)}) for classes {self.classes}")
        return probs

    def latency_ms(self, batch: int = 1, runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP) -> float:
        """Median milliseconds to classify ``batch`` faces (:func:`ferlab.evaluate.latency.median_latency_ms`)."""
        return median_latency_ms(self._predict, batch=batch, runs=runs, warmup=warmup)

    def _predict(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, classes={self.classes})"

