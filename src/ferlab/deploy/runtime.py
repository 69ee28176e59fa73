"""One face-classifier interface over three runtimes: Keras, LiteRT and ONNX Runtime.

Every ferlab model takes raw 48x48 grayscale faces (0-255) and returns class probabilities; the
preprocessing is inside the graph, so an exported file needs nothing but the pixels. What the graph does
not carry is the class names: a run directory has them in metrics.json, and ``ferlab export`` writes them
next to the exported file as ``FILE.json`` (see :func:`sidecar_path`).

``load_classifier(path)`` accepts a run directory, a ``.keras`` file (inside a run directory or with a
sidecar), a ``.tflite`` file or an ``.onnx`` file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ferlab.errors import FerlabError
from ferlab.io import read_json

FACE_SIZE = 48
BACKENDS = ("keras", "litert", "onnx")


def sidecar_path(model_file: str | os.PathLike) -> Path:
    """Where the class names and provenance of an exported model live: ``model.onnx`` -> ``model.onnx.json``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".json")


def as_face_batch(faces: np.ndarray) -> np.ndarray:
    """(48, 48), (48, 48, 1), (N, 48, 48) or (N, 48, 48, 1) pixels -> float32 (N, 48, 48, 1) in [0, 255]."""
    faces = np.asarray(faces)
    if faces.ndim == 2 or faces.shape == (FACE_SIZE, FACE_SIZE, 1):  # one face (48 faces of 48x1 cannot be)
        faces = faces[None]
    if faces.ndim == 3:
        faces = faces[..., None]
    if faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 1):
        raise FerlabError(f"faces: expected (N, 48, 48[, 1]) grayscale crops, got shape {faces.shape}")
    return faces.astype(np.float32, copy=False)


class FaceClassifier:
    """Raw 48x48 faces -> probabilities. Subclasses implement ``_predict`` for one runtime."""

    backend: str = ""

    def __init__(self, path: Path, classes: list[str]):
        self.path = path
        self.classes = list(classes)

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

    def latency_ms(self, batch: int = 1, runs: int = 30, warmup: int = 5) -> float:
        """Median milliseconds to classify ``batch`` faces."""
        x = np.random.default_rng(0).integers(0, 256, (batch, FACE_SIZE, FACE_SIZE, 1)).astype(np.float32)
        for _ in range(warmup):
            self._predict(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self._predict(x)
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1000.0)

    def _predict(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, classes={self.classes})"


class KerasClassifier(FaceClassifier):
    # predict_on_batch, not model(x): ~15x faster for one image on CPU (see ferlab.evaluate.latency).
    backend = "keras"

    def __init__(self, path: Path, classes: list[str], model=None):
        super().__init__(path, classes)
        if model is None:
            import keras

            import ferlab.models  # noqa: F401  (registers ferlab's layers for loading)

            model = keras.models.load_model(path)
        self.model = model

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(x))


class LiteRTClassifier(FaceClassifier):
    backend = "litert"

    def __init__(self, path: Path, classes: list[str], num_threads: int | None = None):
        super().__init__(path, classes)
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(str(path), num_threads=num_threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None
        self._resize(1)

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [batch, FACE_SIZE, FACE_SIZE, 1])
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = batch

    def _predict(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        self.interpreter.set_tensor(self._input["index"], _quantize(x, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float pixels -> the input tensor's dtype (int8/uint8 inputs carry a scale and zero point)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.floating):
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


class OnnxClassifier(FaceClassifier):
    backend = "onnx"

    def __init__(self, path: Path, classes: list[str], num_threads: int | None = None):
        super().__init__(path, classes)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: x})[0]


def load_classifier(path: str | os.PathLike, num_threads: int | None = None) -> FaceClassifier:
    """A run directory, ``.keras``, ``.tflite`` or ``.onnx`` file -> a :class:`FaceClassifier`."""
    path = Path(path)
    if not path.exists():
        raise FerlabError(f"{path}: no such model; give a run directory, or a .keras, .tflite or .onnx file")
    if path.is_dir():
        model_file = path / "model.keras"
        if not model_file.is_file():
            raise FerlabError(f"{path}: no model.keras; give a finished ferlab run directory or a model file")
        return KerasClassifier(model_file, _classes_of(model_file))
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return KerasClassifier(path, _classes_of(path))
    if suffix == ".tflite":
        return LiteRTClassifier(path, _classes_of(path), num_threads=num_threads)
    if suffix == ".onnx":
        return OnnxClassifier(path, _classes_of(path), num_threads=num_threads)
    raise FerlabError(f"{path}: unknown model format {suffix!r}; give a run directory, or a .keras, .tflite or .onnx file")


def _classes_of(model_file: Path) -> list[str]:
    """Class names from the sidecar, or from metrics.json when the model sits in its run directory."""
    sidecar = sidecar_path(model_file)
    if sidecar.is_file():
        meta = read_json(sidecar, "model sidecar", fix="export the model again with `ferlab export`")
    elif (model_file.parent / "metrics.json").is_file():
        meta = read_json(model_file.parent / "metrics.json", "metrics.json")
    else:
        raise FerlabError(f"{model_file}: class names not found: expected {sidecar.name} next to it "
                          f"(written by `ferlab export`) or metrics.json of its run directory")
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise FerlabError(f"{sidecar if sidecar.is_file() else model_file.parent / 'metrics.json'}: "
                          f"'classes' must be a non-empty list of names; export the model again")
    return classes
