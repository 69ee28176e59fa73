"""Keras: the format ferlab trains and saves (``model.keras``), run through ``predict_on_batch``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlab.deploy.formats.base import FaceClassifier


class KerasClassifier(FaceClassifier):
    # predict_on_batch, not model(x): ~15x faster for one image on CPU (see ferlab.evaluate.latency).
    format = "keras"

    def __init__(self, path: Path, classes: list[str], model=None, num_threads: int | None = None):
        super().__init__(path, classes)
        if model is None:
            from ferlab.models import load_model

            model = load_model(path)
        self.model = model

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(x))
