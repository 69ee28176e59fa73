"""ONNX (``.onnx``), run by ONNX Runtime on the CPU.

Conversion: ``none`` float32; ``fp16`` float16 weights and ops with float32 input and output (the graph
casts around its float16 ops); ``int8`` onnxruntime's static QDQ quantisation, per-channel int8 weights
and uint8 activations, float32 input and output (the graph quantises the pixels itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlab.deploy.formats.base import FaceClassifier
from ferlab.errors import FerlabError, first_line


class OnnxClassifier(FaceClassifier):
    format = "onnx"

    def __init__(self, path: Path, classes: list[str], num_threads: int | None = None, spinning: bool = False):
        super().__init__(path, classes)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        # ONNX Runtime's worker threads spin (busy-wait) after each run by default: in a live loop they take
        # a core from the detector and the video decoder. `python -m bench live-runtime` (bench/README.md):
        # live frames/s 1.13x with spinning off for one face, 1.07x for five, on 2 otherwise idle cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own Fail/InvalidGraph/... types)
            raise FerlabError(f"{path}: ONNX Runtime cannot load it as an .onnx model ({first_line(exc)}); "
                              f"export the model again with `ferlab export`") from None
        self._input = self.session.get_inputs()[0].name

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: x})[0]


def convert(model, quantize: str, rep: np.ndarray | None, tmp: Path) -> tuple[bytes, dict]:
    out = tmp / "model.onnx"
    model.export(str(out), format="onnx", verbose=False)
    facts: dict = {}
    if quantize == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        half = convert_float_to_float16(onnx.load(str(out)), keep_io_types=True)
        out = tmp / "model-fp16.onnx"
        onnx.save(half, str(out))
    elif quantize == "int8":
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        input_name = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()[0].name

        class Faces(CalibrationDataReader):
            def __init__(self):
                self._batches = iter(range(len(rep)))

            def get_next(self):
                i = next(self._batches, None)
                return None if i is None else {input_name: rep[i:i + 1]}

        prepared = tmp / "model-pre.onnx"
        quant_pre_process(str(out), str(prepared), skip_symbolic_shape=True)
        out = tmp / "model-int8.onnx"
        quantize_static(str(prepared), str(out), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        facts.update(int8_mode="static QDQ, per-channel int8 weights, uint8 activations",
                     representative_images=len(rep))
    return out.read_bytes(), facts


def input_spec(clf: OnnxClassifier) -> dict:
    """What the file's input tensor takes, for the sidecar."""
    return {"name": clf.session.get_inputs()[0].name, "dtype": "float32"}
