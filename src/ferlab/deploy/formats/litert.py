"""LiteRT (``.tflite``): the format for phones and the fastest runtime on a CPU here.

Conversion: ``none`` float32; ``fp16`` float16 weights (LiteRT dequantises them once at load); ``int8``
full-integer post-training quantisation calibrated on representative faces, with a **uint8 input of
scale 1 and zero point 0** (exactly the raw pixels, so a camera's uint8 crop goes in as it is) and a
float32 output. If a backbone has an op without an int8 kernel, the conversion falls back to integer with
float fallback (recorded as ``int8_mode``). ``dynamic``: dynamic-range quantisation, int8 weights (about the
int8 file's size) with float32 input, activations and output; the converter's hybrid kernels quantise
activations on the fly. No calibration faces, so no activation range is clipped: on accurate-fer7 (then
an ImageNet MobileNetV2 + fercnn-wide ensemble, commit aff79ea) it kept 99.29% top-1 agreement with Keras
on the validation faces where full-integer int8 kept 96.25% (the card's ``validation_parity``, before and
after), at about twice int8's time per face on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlab.deploy.formats.base import FaceClassifier
from ferlab.errors import FerlabError, first_line
from ferlab.face import FACE_SHAPE


class LiteRTClassifier(FaceClassifier):
    format = "litert"

    def __init__(self, path: Path, classes: list[str], num_threads: int | None = None):
        super().__init__(path, classes)
        from ai_edge_litert.interpreter import Interpreter

        from ferlab.native import native_stderr_silenced

        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on stderr when allocating
                self.interpreter = Interpreter(str(path), num_threads=num_threads)
                self._input = self.interpreter.get_input_details()[0]
                self._output = self.interpreter.get_output_details()[0]
                self._batch = None
                self._resize(1)
        except (ValueError, RuntimeError) as exc:
            raise FerlabError(f"{path}: LiteRT cannot load it as a .tflite model ({first_line(exc)}); "
                              f"export the model again with `ferlab export`") from None

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [batch, *FACE_SHAPE])
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


def convert(model, quantize: str, rep: np.ndarray | None, tmp: Path) -> tuple[bytes, dict]:
    import tensorflow as tf

    out = tmp / "model.tflite"
    facts: dict = {}
    if quantize == "none":
        model.export(str(out), format="litert", verbose=False)
    elif quantize == "fp16":
        model.export(str(out), format="litert", verbose=False, optimizations=[tf.lite.Optimize.DEFAULT],
                     target_spec={"supported_types": [tf.float16]})
    elif quantize == "dynamic":
        model.export(str(out), format="litert", verbose=False, optimizations=[tf.lite.Optimize.DEFAULT])
        facts["int8_mode"] = "dynamic range: int8 weights, float32 activations"
    else:
        def dataset():
            for i in range(len(rep)):
                yield [rep[i:i + 1]]

        common = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": dataset,
                  "inference_input_type": tf.uint8, "inference_output_type": tf.float32}
        try:
            model.export(str(out), format="litert", verbose=False, **common,
                         target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]})
            facts["int8_mode"] = "full-integer"
        except Exception:  # noqa: BLE001  (an op without an int8 kernel: keep it in float)
            model.export(str(out), format="litert", verbose=False, **common,
                         target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                        tf.lite.OpsSet.TFLITE_BUILTINS]})
            facts["int8_mode"] = "integer with float fallback"
        facts["representative_images"] = len(rep)
    return out.read_bytes(), facts


def input_spec(clf: LiteRTClassifier) -> dict:
    """What the file's input tensor takes, for the sidecar."""
    detail = clf.interpreter.get_input_details()[0]
    spec = {"name": detail["name"], "dtype": np.dtype(detail["dtype"]).name,
            "batch_note": "the file has a batch of 1; resize the input tensor for other batch sizes"}
    if not np.issubdtype(detail["dtype"], np.floating):
        scale, zero = detail["quantization"]
        spec["quantization"] = {"scale": float(scale), "zero_point": int(zero),
                                "raw_pixels": bool(np.isclose(scale, 1.0) and zero == 0)}
    return spec


def with_batch_of_one(blob: bytes) -> bytes:
    """A .tflite file whose dynamic batch dimension (-1 in the tensors' shape signatures) is fixed to 1.

    ferlab exports take any batch (the interpreter is resized per call); LiteRT.js compiles a model once and
    refuses an input whose shape differs from the signature's -1. Editing the flatbuffer keeps every weight
    and op as they are (the same numbers come out); ``ai_edge_litert`` ships the schema tools, so this needs
    no TensorFlow.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            signature = tensor.shapeSignature
            if signature is not None and len(signature) and int(signature[0]) == -1:
                if any(int(d) == -1 for d in list(signature)[1:]):
                    raise FerlabError("a .tflite model for the browser: it has a dynamic dimension other than "
                                      "the batch; export it again with `ferlab export`")
                tensor.shapeSignature = None  # the static shape (batch 1, as converted) stands
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
