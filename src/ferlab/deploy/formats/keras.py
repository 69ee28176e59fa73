"""Keras: the format ferlab trains and saves (``model.keras``), run through ``predict_on_batch``.

As an export target it writes the run's inference model as a stand-alone ``.keras`` file with the sidecar
(classes, provenance) beside it, so it can be shared or served without the run directory. Only
``none``: Keras has no post-training quantisation of its own here (export to LiteRT or ONNX for that).
"""

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


def convert(model, quantize: str, rep: np.ndarray | None, tmp: Path) -> tuple[bytes, dict]:
    """The inference model (no optimizer state) as ``.keras`` bytes; loads in Keras's safe mode."""
    import keras

    out = tmp / "model.keras"
    keras.Model(model.inputs, model.outputs, name=model.name).save(out)
    return out.read_bytes(), {}


def input_spec(clf: KerasClassifier) -> dict:
    """What the file's input takes, for the sidecar."""
    return {"dtype": "float32 or uint8", "batch_note": "any batch size"}
