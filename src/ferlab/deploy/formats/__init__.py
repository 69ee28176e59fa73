"""Model formats and their runtimes: one registry entry each.

An entry names the file suffix, the runtime that runs it (a :class:`FaceClassifier` class), and, for an
export target, its converter, its input description for the sidecar and the parity bound per
quantisation. ``ferlab export --format``, ``ferlab live --backend``, :func:`load_classifier`'s dispatch
by suffix, the export parity check and the tests all read :data:`FORMATS`; adding a format is its module
plus one :func:`register_format` call.

What the graph does not carry is the class names: a run directory has them in metrics.json, and
``ferlab export`` writes them next to the exported file as ``FILE.json`` (:func:`sidecar_path`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferlab.deploy.formats import keras as keras_format
from ferlab.deploy.formats import litert, onnx
from ferlab.deploy.formats.base import FaceClassifier
from ferlab.deploy.sidecar import sidecar_classes, sidecar_path
from ferlab.errors import FerlabError
from ferlab.registry import Registry
from ferlab.rundir import RunDir

QUANTIZE = ("none", "fp16", "int8", "dynamic")


@dataclass(frozen=True)
class ModelFormat:
    name: str
    suffix: str
    runtime: str  # in words, for reports
    classifier: type[FaceClassifier]
    # Export: (keras model, quantize, calibration faces or None, temp dir) -> (file bytes, facts); None: not a target.
    convert: Callable | None = None
    input_spec: Callable[[FaceClassifier], dict] | None = None  # the exported file's input, for the sidecar
    # Minimum top-1 agreement with the Keras model on the parity faces, per quantisation.
    agreement_bound: dict[str, float] = field(default_factory=dict)

    @property
    def exportable(self) -> bool:
        return self.convert is not None


FORMATS: Registry[ModelFormat] = Registry("format", "--format")


def register_format(fmt: ModelFormat) -> ModelFormat:
    return FORMATS.register(fmt.name, fmt)


def export_formats() -> tuple[str, ...]:
    return tuple(f.name for f in FORMATS if f.exportable)


def default_export_format(out: str | os.PathLike | None) -> str:
    """What ``ferlab export`` makes without ``--format``: the export format ``out``'s suffix names, else litert."""
    suffix = Path(out).suffix.lower() if out is not None else None
    return next((f.name for f in FORMATS if f.exportable and f.suffix == suffix), "litert")


def format_of_file(path: Path) -> ModelFormat | None:
    suffix = path.suffix.lower()
    return next((f for f in FORMATS if f.suffix == suffix), None)


def model_file_words() -> str:
    """'a run directory, or a .keras, .tflite or .onnx file' for help texts and errors."""
    suffixes = [f.suffix for f in FORMATS]
    return f"a run directory, or a {', '.join(suffixes[:-1])} or {suffixes[-1]} model file"


def resolve_model_file(model: str | os.PathLike, backend: str = "auto") -> Path:
    """The model file to load for ``backend`` (``--backend``): auto takes ``model`` as it is; a format name
    given a run directory takes its ``exports/model<suffix>`` (written by ``ferlab export``), or its
    model.keras for keras; given a file, the file must be of that format."""
    model = Path(model)
    if backend != "auto" and backend not in FORMATS:
        raise FerlabError(f"--backend: unknown backend {backend!r}; choose auto, {FORMATS.choices()}")
    if backend == "auto" or not model.exists():
        return model  # load_classifier explains a missing path
    fmt = FORMATS.get(backend)
    if model.is_dir():
        run = RunDir(model)
        if run.model_file.suffix == fmt.suffix:
            return model
        exported = run.exports_dir / f"model{fmt.suffix}"
        if not exported.is_file():
            raise FerlabError(f"--backend {backend}: {exported} not found; export it first: "
                              f"ferlab export {model} --format {backend}")
        return exported
    if model.suffix.lower() != fmt.suffix:
        raise FerlabError(f"--backend {backend}: {model} is not a {fmt.suffix} file; give a {fmt.suffix} file, "
                          f"its run directory, or --backend auto")
    return model


def load_classifier(path: str | os.PathLike, num_threads: int | None = None) -> FaceClassifier:
    """A run directory or a model file of any registered format -> its :class:`FaceClassifier`."""
    path = Path(path)
    if not path.exists():
        raise FerlabError(f"{path}: no such model; give {model_file_words()}")
    if path.is_dir():
        model_file = RunDir(path).require_model()
    else:
        model_file = path
    fmt = format_of_file(model_file)
    if fmt is None:
        raise FerlabError(f"{path}: unknown model format {model_file.suffix!r}; give {model_file_words()}")
    return fmt.classifier(model_file, classes_of(model_file), num_threads=num_threads)


def classes_of(model_file: Path) -> list[str]:
    """Class names from the sidecar (:mod:`ferlab.deploy.sidecar`), or from metrics.json when the model sits
    in its run directory."""
    classes = sidecar_classes(model_file)
    if classes is not None:
        return classes
    if (run := RunDir.holding(model_file)) is not None:
        return run.classes()
    raise FerlabError(f"{model_file}: class names not found: expected {sidecar_path(model_file).name} next to it "
                      f"(written by `ferlab export`) or metrics.json of its run directory")


register_format(ModelFormat("keras", ".keras", "Keras (predict_on_batch)", keras_format.KerasClassifier,
                            keras_format.convert, keras_format.input_spec, {"none": 0.995}))
register_format(ModelFormat("litert", ".tflite", "LiteRT interpreter", litert.LiteRTClassifier, litert.convert,
                            litert.input_spec, {"none": 0.995, "fp16": 0.995, "int8": 0.97, "dynamic": 0.97}))
register_format(ModelFormat("onnx", ".onnx", "ONNX Runtime (CPU)", onnx.OnnxClassifier, onnx.convert,
                            onnx.input_spec, {"none": 0.995, "fp16": 0.995, "int8": 0.97}))

__all__ = ["FORMATS", "QUANTIZE", "FaceClassifier", "ModelFormat", "classes_of", "default_export_format",
           "export_formats", "format_of_file", "load_classifier", "model_file_words", "register_format",
           "resolve_model_file", "sidecar_path"]
