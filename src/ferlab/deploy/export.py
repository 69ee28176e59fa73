"""Export a trained run to any export format of :data:`ferlab.deploy.formats.FORMATS` (LiteRT ``.tflite``,
ONNX ``.onnx``, a stand-alone Keras ``.keras``), optionally quantised, and check it against Keras.

The exported file takes what every ferlab model takes: raw 48x48 grayscale face crops, (N, 48, 48, 1)
pixels in [0, 255]; resizing, grey->RGB and the family's normalisation are inside the graph. Its output is
the class probabilities, float32 (N, num_classes), in the order of the sidecar's ``classes``.

Quantisation (``quantize``):

- ``none``: float32 weights and compute.
- ``fp16``: float16 weights (half the file); LiteRT and ONNX Runtime compute in float32 on a CPU (LiteRT
  dequantises the weights once at load; the ONNX graph casts around its float16 ops). Input and output
  stay float32.
- ``int8``: post-training static quantisation calibrated on ``representative_images`` faces drawn from
  the run's training split (never its test split, which the parity check uses).
  LiteRT: full-integer (int8 weights and activations, ``TFLITE_BUILTINS_INT8``); the input tensor is
  **uint8 with scale 1 and zero point 0**, i.e. exactly the raw pixels, so a camera's uint8 crop goes in
  as it is; the output stays float32 probabilities. If a backbone has an op without an int8 kernel, the
  conversion falls back to integer-with-float-fallback (recorded as ``int8_mode`` in the sidecar).
  ONNX: onnxruntime's static QDQ quantisation, per-channel int8 weights and uint8 activations, with
  float32 input and output (the graph quantises the pixels itself).
- ``dynamic`` (LiteRT only): int8 weights, float32 activations (dynamic-range quantisation): the int8
  file's size without calibrated activation ranges, so closer to float32 on networks whose activations
  quantise badly (ImageNet MobileNetV2: see :mod:`ferlab.deploy.formats.litert`), slower than ``int8``.
  Input and output stay float32.

Beside ``FILE`` the export writes ``FILE.json`` (the sidecar, :mod:`ferlab.deploy.sidecar`: classes, format,
quantize, source run, input and output spec; :func:`ferlab.deploy.formats.load_classifier` reads it) and
``FILE.parity.json``: the exported model against the Keras model on up to ``parity_images`` test faces of
the run's data (top-1 agreement, max |delta p|, accuracies, file sizes, single-image latency in the
matching runtime and in Keras, the predicted labels) and ``passed``: agreement >= the format's ``agreement_bound`` for the quantisation.

A failed parity check keeps all three files (the report explains what is wrong) and the CLI exits with
:class:`ParityError`'s code 3, distinct from 2 for bad input, so a script can tell "no export" from
"export written but not faithful". All files are written atomically (temporary file, then rename), the
model file last, so a model file always has its sidecar; nothing is written when the conversion fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ferlab.deploy.formats import FORMATS, ModelFormat, default_export_format, export_formats, sidecar_path
from ferlab.deploy.formats.base import FaceClassifier
from ferlab.deploy.formats.keras import KerasClassifier
from ferlab.deploy.sidecar import write_sidecar
from ferlab.errors import FerlabError
from ferlab.evaluate.latency import LATENCY_RUNS, LATENCY_WARMUP
from ferlab.face import FACE_SHAPE
from ferlab.io import atomic_write_bytes, atomic_write_json
from ferlab.rundir import RunDir

PARITY_BATCH = 64  # exported models are run in chunks: a 224 px backbone on 1,000 faces at once needs GBs
PARITY_IMAGES = 1000  # test faces the parity check compares, by default (--parity-images)
REPRESENTATIVE_IMAGES = 300  # training faces that calibrate int8, by default (--representative-images)


class ParityError(FerlabError):
    """The export was written but disagrees with the Keras model more than the bound allows."""

    exit_code = 3


def check_passed(report: dict) -> None:
    """Raise :class:`ParityError` (one line) when a parity report did not meet its bound."""
    if not report["passed"]:
        raise ParityError(f"{report['file']}: parity check failed: top-1 agreement {report['top1_agreement']:.2%} with "
                          f"Keras on {report['n_images']} test faces is below the {report['bound']:.1%} bound for "
                          f"{report['quantize']} (max |delta p| {report['max_abs_diff']:.3g}); files kept, "
                          f"see {parity_report_path(report['file'])}")


def parity_report_path(model_file: str | os.PathLike) -> Path:
    """``model.tflite`` -> ``model.tflite.parity.json``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".parity.json")


def default_out(run_dir: str | os.PathLike, fmt: str, quantize: str) -> Path:
    """``RUN_DIR/exports/model.tflite``, ``model-fp16.tflite``, ``model-int8.onnx``, ..."""
    suffix = FORMATS.get(fmt).suffix
    return RunDir(run_dir).exports_dir / f"model{'' if quantize == 'none' else '-' + quantize}{suffix}"


def export_format(fmt: str, quantize: str) -> ModelFormat:
    """The registry entry for an export target, after checking both choices."""
    entry = FORMATS.get(fmt) if fmt in FORMATS else None
    if entry is None or not entry.exportable:
        targets = export_formats()
        raise FerlabError(f"--format: {fmt!r} is not an export format; choose "
                          + ", ".join(f"{n} ({FORMATS.get(n).suffix})" for n in targets))
    if quantize not in entry.agreement_bound:
        raise FerlabError(f"--quantize: unknown quantisation {quantize!r} for {fmt}; choose "
                          f"{', '.join(entry.agreement_bound)}")
    return entry


# --------------------------------------------------------------------------------------------- converting
@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what TensorFlow's converter and LiteRT print from C++ (fd 2); FERLAB_TF_VERBOSE=1 keeps it."""
    from ferlab.native import native_stderr_silenced

    with native_stderr_silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's np.object FutureWarning, converter deprecations
        yield


def full_range_representative(images: np.ndarray) -> np.ndarray:
    """float32 (N, 48, 48, 1) calibration faces whose pixels span 0..255.

    The int8 input tensor's scale and zero point come from the calibration range; when it is exactly
    0..255 they are 1 and 0, so the uint8 input is the raw pixels. Real faces almost always reach both
    ends; if not, one contrast-stretched copy of the first face is added (a plausible face, not an
    artificial pattern that would widen the activations' ranges).
    """
    x = np.asarray(images, np.float32).reshape(-1, *FACE_SHAPE)
    if len(x) and (x.min() > 0 or x.max() < 255):
        face = x[0]
        lo, hi = float(face.min()), float(face.max())
        stretched = (face - lo) * (255.0 / max(hi - lo, 1.0))
        x = np.concatenate([x, np.round(stretched)[None]], axis=0)
    return x


def convert(model, fmt: str, quantize: str = "none", representative: np.ndarray | None = None) -> tuple[bytes, dict]:
    """A Keras ferlab model -> (the exported file's bytes, facts about the conversion for the sidecar).

    ``representative``: calibration faces (N, 48, 48[, 1]) in [0, 255], needed for ``int8``.
    """
    entry = export_format(fmt, quantize)
    if quantize == "int8" and (representative is None or len(representative) == 0):
        raise FerlabError("--quantize int8: needs representative faces for calibration; give the run's training data")
    rep = None if representative is None else full_range_representative(representative)
    model.predict_on_batch(np.zeros((1, *FACE_SHAPE), np.float32))  # the ONNX exporter needs a called model
    with tempfile.TemporaryDirectory(prefix="ferlab-export-") as tmp, quiet_native_stderr():
        return entry.convert(model, quantize, rep, Path(tmp))


def open_exported(path: str | os.PathLike, fmt: str, classes: list[str], num_threads: int | None = None) -> FaceClassifier:
    """The runtime classifier for an exported file (without needing its sidecar yet)."""
    return FORMATS.get(fmt).classifier(Path(path), list(classes), num_threads=num_threads)


def input_spec(clf: FaceClassifier) -> dict:
    """What the exported file's input tensor takes, for the sidecar."""
    spec = {"shape": [None, *FACE_SHAPE], "layout": "NHWC",
            "content": "grayscale face crop, raw pixels in [0, 255]; preprocessing is inside the graph"}
    describe = FORMATS.get(clf.format).input_spec
    return {**spec, **(describe(clf) if describe else {})}


# ------------------------------------------------------------------------------------------------ parity
def predict_chunked(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = PARITY_BATCH) -> np.ndarray:
    return np.concatenate([np.asarray(predict(x[i:i + batch]), np.float32) for i in range(0, len(x), batch)])


def parity(reference: np.ndarray, exported: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Agreement of two probability arrays (N, C): top-1 agreement, |delta p| statistics, accuracies."""
    ref_top, exp_top = reference.argmax(1), exported.argmax(1)
    diff = np.abs(exported.astype(np.float64) - reference.astype(np.float64))
    result = {"n_images": len(reference), "top1_agreement": float((ref_top == exp_top).mean()),
              "disagreements": int((ref_top != exp_top).sum()), "max_abs_diff": float(diff.max()),
              "mean_abs_diff": float(diff.mean())}
    if labels is not None:
        result.update(keras_accuracy=float((ref_top == labels).mean()),
                      exported_accuracy=float((exp_top == labels).mean()))
    return result


# ----------------------------------------------------------------------------------------------- the run
def _load_data(run: RunDir, config: dict, data: str | os.PathLike | None, classes: list[str]):
    from ferlab.data.prepare import PreparedData, is_prepared

    path = Path(data) if data is not None else Path(str(config.get("data", "")))
    if data is None and not is_prepared(path):
        raise FerlabError(f"{run.config_file}: its prepared data {str(path)!r} is gone; "
                          f"pass --data with the prepared data directory the run was trained on")
    prepared = PreparedData(path)
    if list(prepared.classes) != list(classes):
        raise FerlabError(f"--data {path}: classes {list(prepared.classes)} differ from the run's {classes}; "
                          f"give data prepared with the run's protocol")
    return prepared


def _sample(n_total: int, n: int, seed: int) -> np.ndarray:
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def _check_outputs(out: Path, overwrite: bool) -> None:
    """The model file, its sidecar and its parity report: none may exist without --overwrite."""
    if out.is_dir():
        raise FerlabError(f"--out {out}: is a directory; give a file name ending in the format's suffix")
    existing = [p for p in (out, sidecar_path(out), parity_report_path(out)) if p.exists()]
    if existing and not overwrite:
        raise FerlabError(f"--out {existing[0]}: already exists; choose another --out or pass --overwrite")


def export_run(run_dir: str | os.PathLike, fmt: str | None = None, quantize: str = "none",
               out: str | os.PathLike | None = None, *, parity_images: int = PARITY_IMAGES,
               representative_images: int = REPRESENTATIVE_IMAGES, data: str | os.PathLike | None = None,
               overwrite: bool = False, latency_runs: int = LATENCY_RUNS, seed: int = 0, strict: bool = True,
               on_stage: Callable[[str], None] | None = None) -> dict:
    """Export ``run_dir``'s model and write ``out``, ``out.json`` (sidecar) and ``out.parity.json``.

    ``fmt``: litert or onnx (None: from ``out``'s suffix, else litert). ``out`` defaults to
    :func:`default_out`. ``parity_images``: test faces compared (all of the split if fewer), drawn with
    ``seed``; ``representative_images``: training faces for int8 calibration. ``data`` overrides the
    prepared data directory recorded in the run's config.json (same classes required). Returns the parity
    report; with ``strict`` a report that fails its bound raises :class:`ParityError` after the files are
    written. ``on_stage`` is called with a short description as each stage begins.
    """
    stage = on_stage or (lambda _text: None)
    entry = export_format(fmt or default_export_format(out), quantize)
    fmt = entry.name  # as registered (the lookup ignores case)
    if parity_images < 1:
        raise FerlabError(f"--parity-images: must be at least 1, got {parity_images}")
    if quantize == "int8" and representative_images < 1:
        raise FerlabError(f"--representative-images: must be at least 1, got {representative_images}")
    run = RunDir(run_dir)
    classes = run.classes()
    config = run.config()
    out = Path(out) if out is not None else default_out(run.path, fmt, quantize)
    if out.suffix.lower() != entry.suffix:
        raise FerlabError(f"--out {out}: --format {fmt} writes a {entry.suffix} file; give --out a {entry.suffix} "
                          f"name or change --format")
    _check_outputs(out, overwrite)
    prepared = _load_data(run, config, data, classes)
    x_test, y_test = prepared.arrays("test")
    if len(x_test) == 0:
        raise FerlabError(f"{prepared.path}: the test split is empty; the parity check needs test faces")
    rows = _sample(len(x_test), parity_images, seed)
    x_parity = np.asarray(x_test[rows], np.float32).reshape(-1, *FACE_SHAPE)
    y_parity = np.asarray(y_test[rows])
    representative = None
    if quantize == "int8":
        x_train, _ = prepared.arrays("train")
        if len(x_train) == 0:
            raise FerlabError(f"{prepared.path}: the train split is empty; int8 calibration needs training faces")
        representative = x_train[_sample(len(x_train), representative_images, seed + 1)]

    from ferlab.models import load_model

    stage("loading the Keras model")
    model = load_model(run.model_file)
    keras_clf = KerasClassifier(run.model_file, classes, model=model)
    stage(f"converting to {fmt}" + ("" if quantize == "none" else f" ({quantize})"))
    try:
        blob, facts = convert(model, fmt, quantize, representative)
    except FerlabError:
        raise
    except Exception as exc:  # noqa: BLE001  (any converter failure: one line, nothing written)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FerlabError(f"{run.model_file}: {fmt} {quantize} conversion failed ({first[:300]}); "
                          f"try another --quantize or --format") from None

    with tempfile.TemporaryDirectory(prefix="ferlab-export-") as tmp:
        staged = Path(tmp) / f"model{entry.suffix}"
        staged.write_bytes(blob)
        clf = open_exported(staged, fmt, classes)
        stage(f"parity on {len(x_parity)} test faces")
        ref = predict_chunked(model.predict_on_batch, x_parity)
        got = predict_chunked(clf.predict, x_parity)
        stage("latency")
        latency = clf.latency_ms(1, runs=latency_runs)
        keras_latency = keras_clf.latency_ms(1, runs=latency_runs)
        spec = input_spec(clf)

    result = parity(ref, got, y_parity)
    bound = entry.agreement_bound[quantize]
    source = {"run": str(run.path.resolve()), "model": config.get("model", {}),
              "data": str(prepared.path.resolve()), "data_fingerprint": prepared.fingerprint}
    report = {"file": str(out), "format": fmt, "quantize": quantize, "classes": classes, "source_run": source["run"],
              "source": source, "split": "test", "seed": seed, **result, "bound": bound,
              "passed": bool(result["top1_agreement"] >= bound), "file_size_bytes": len(blob),
              "keras_file_size_bytes": run.model_file.stat().st_size,
              "latency_ms": latency, "latency_runtime": entry.runtime, "keras_latency_ms": keras_latency,
              "latency_note": f"median of {latency_runs} single-face calls after {LATENCY_WARMUP} warm-up calls "
                              f"(ferlab.evaluate.latency); Keras via predict_on_batch",
              **facts, "indices": rows.tolist(), "labels": y_parity.tolist(),
              "keras_predictions": ref.argmax(1).tolist(), "predictions": got.argmax(1).tolist()}
    stage("writing")
    write_sidecar(out, classes=classes, fmt=fmt, quantize=quantize, runtime=entry.runtime, input=spec, facts=facts,
                  source=source, parity_report=parity_report_path(out).name,
                  created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_json(parity_report_path(out), report)
    atomic_write_bytes(out, blob)  # last: a model file always has its sidecar
    if strict:
        check_passed(report)
    return report
