"""CPU inference latency of every backbone in Keras, LiteRT (fp32/fp16/int8) and ONNX Runtime.

Per backbone: the ferlab model (raw 48x48 grayscale faces in, avg pooling, 5 classes), random-init weights
(the offline ImageNet MobileNetV2 from ../shared/weights for mobilenetv2 when present; weights do not change
the cost of a float model), exported with the same code as ``ferlab export`` (:func:`ferlab.deploy.export.convert`;
int8 calibrated on real FER2013 training faces when ../shared has them, else on random pixels). Median
milliseconds for one face and for a batch of 64, in the runtime's own session/interpreter with
``--threads`` threads (Keras: ``predict_on_batch`` with TensorFlow's default thread pools), file sizes,
and each runtime's time as a ratio of Keras's in the same run (< 1: faster than Keras).

    python -m bench inference                       # all backbones at 48 px
    python -m bench inference --input-size 224 --backbones mobilenetv2,mobilenetv3small
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, write_table

RUNTIMES = ("keras", "litert-none", "litert-fp16", "litert-int8", "onnx-none", "onnx-fp16", "onnx-int8")
DEFAULT_RUNTIMES = "keras,litert-none,litert-fp16,litert-int8,onnx-none"
CLASSES = ["angry", "anxious", "happy", "neutral", "sad"]


def real_faces(per_class: int = 30) -> np.ndarray | None:
    """Up to ``per_class`` FER2013 training faces per class folder, (N, 48, 48, 1) float32; None if absent."""
    root = SHARED / "data" / "fer2013" / "train"
    if not root.is_dir():
        return None
    from PIL import Image

    from ferlab.face import FACE_SIZE

    faces = [np.asarray(Image.open(f).convert("L").resize((FACE_SIZE, FACE_SIZE)), np.float32)
             for folder in sorted(p for p in root.iterdir() if p.is_dir())
             for f in sorted(folder.iterdir())[:per_class]]
    return np.stack(faces)[..., None] if faces else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench inference", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="all", help="comma-separated, or all (ferlab.models.list_backbones())")
    parser.add_argument("--input-size", type=int, default=48, help="side the faces are resized to in the graph")
    parser.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help=f"comma-separated from {','.join(RUNTIMES)}")
    parser.add_argument("--runs", type=int, default=30, help="timed single-face calls (median)")
    parser.add_argument("--batch-runs", type=int, default=5, help="timed batch-64 calls (median)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT / ONNX Runtime threads")
    args = parser.parse_args(argv)

    import ferlab.models  # noqa: F401  (quiet TensorFlow import)
    from ferlab.deploy.export import convert, open_exported
    from ferlab.deploy.formats.keras import KerasClassifier
    from ferlab.models import ModelConfig, build_model, list_backbones

    backbones = list_backbones() if args.backbones == "all" else args.backbones.split(",")
    runtimes = args.runtimes.split(",")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown or "keras" not in runtimes:
        parser.error(f"--runtimes: unknown {unknown}; choose from {', '.join(RUNTIMES)} (keras is required: "
                     f"the ratios are against it)")
    faces = real_faces()
    calibration = "FER2013 train faces" if faces is not None else "random pixels"
    if faces is None:
        from ferlab.face import random_faces

        faces = random_faces(210)
    check = faces[np.random.default_rng(1).choice(len(faces), 64, replace=False)]
    mnv2 = SHARED / "weights" / "mobilenet_v2_1.0_224_tvport_notop.weights.h5"
    started = time.perf_counter()
    path = None
    for backbone in backbones:
        t0 = time.perf_counter()
        weights = str(mnv2) if backbone == "mobilenetv2" and mnv2.is_file() else "none"
        cfg = ModelConfig(backbone=backbone, pooling="avg", input_size=args.input_size, num_classes=len(CLASSES),
                          weights=weights)
        model = build_model(cfg)
        keras_clf = KerasClassifier(Path("model.keras"), CLASSES, model=model)
        reference = keras_clf.predict(check)
        base = {"backbone": backbone, "input_size": cfg.input_size, "pooling": "avg",
                "weights": "imagenet (offline)" if weights != "none" else "random init", "threads": args.threads}
        with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
            model.save(Path(tmp) / "model.keras")
            keras_row = {**base, "runtime": "keras", "quantize": "none",
                         "batch1_ms": keras_clf.latency_ms(1, runs=args.runs),
                         "batch64_ms": keras_clf.latency_ms(64, runs=args.batch_runs, warmup=2),
                         "file_size_bytes": (Path(tmp) / "model.keras").stat().st_size, "convert_s": 0.0,
                         "max_abs_diff": 0.0, "top1_agreement": 1.0, "int8_mode": ""}
            rows = [keras_row]
            print(f"{backbone} {cfg.input_size}px: keras {keras_row['batch1_ms']:.2f} ms / "
                  f"{keras_row['batch64_ms']:.1f} ms (batch 64)", flush=True)
            for name in runtimes:
                if name == "keras":
                    continue
                fmt, quantize = name.split("-")
                c0 = time.perf_counter()
                try:
                    blob, facts = convert(model, fmt, quantize, faces if quantize == "int8" else None)
                except Exception as exc:  # noqa: BLE001  (record the failure, go on with the others)
                    print(f"  {name}: conversion failed: {str(exc).splitlines()[0][:200]}", flush=True)
                    rows.append({**base, "runtime": fmt, "quantize": quantize, "error": str(exc).splitlines()[0][:200]})
                    continue
                convert_s = time.perf_counter() - c0
                file = Path(tmp) / f"{name}{'.tflite' if fmt == 'litert' else '.onnx'}"
                file.write_bytes(blob)
                clf = open_exported(file, fmt, CLASSES, num_threads=args.threads)
                probs = clf.predict(check)
                row = {**base, "runtime": fmt, "quantize": quantize,
                       "batch1_ms": clf.latency_ms(1, runs=args.runs),
                       "batch64_ms": clf.latency_ms(64, runs=args.batch_runs, warmup=2),
                       "file_size_bytes": len(blob), "convert_s": round(convert_s, 1),
                       "max_abs_diff": float(f"{np.abs(probs - reference).max():.3g}"),
                       "top1_agreement": float((probs.argmax(1) == reference.argmax(1)).mean()),
                       "int8_mode": facts.get("int8_mode", "")}
                rows.append(row)
                print(f"  {name}: {row['batch1_ms']:.2f} ms / {row['batch64_ms']:.1f} ms, "
                      f"{len(blob) / 1e6:.2f} MB, max |dp| {row['max_abs_diff']:.3g} ({convert_s:.0f} s to convert)",
                      flush=True)
        for row in rows:
            for b in ("batch1", "batch64"):
                if f"{b}_ms" in row:
                    row[f"{b}_vs_keras"] = round(row[f"{b}_ms"] / keras_row[f"{b}_ms"], 3)
                    row[f"{b}_ms"] = round(row[f"{b}_ms"], 3)
            row.update(calibration=calibration, backbone_seconds=round(time.perf_counter() - t0, 1))
        # written after every backbone, so an interrupted run keeps what it measured
        path = write_table("inference", rows, key=("backbone", "input_size", "runtime", "quantize"))
        del model
        import keras

        keras.backend.clear_session()
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    if path is not None:
        print(path.read_text())
