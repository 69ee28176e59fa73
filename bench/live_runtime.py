"""Classifier runtime settings in the live loop: ONNX Runtime's thread spinning, and threads, beside BlazeFace.

The same videos as ``python -m bench live`` (one moving face; five faces), a random-init fercnn exported
to .onnx and .tflite, and :func:`ferlab.deploy.live.run_live` in this process (what ``ferlab live
--no-display`` runs) with the default detector set up for a stream. Per setting, ``--repeats`` passes,
interleaved in alternating order; frames/s is the median, with detect and classify ms per frame, and each
row's frames/s as a ratio to ferlab's default for the runtime in this run.

Settings: ONNX Runtime with spinning (its own default: worker threads busy-wait between calls) and without
(ferlab's default), each with the runtime's threads and with one; LiteRT with its threads and with one.

    python -m bench live-runtime
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import write_table

CLASSES = ["angry", "anxious", "happy", "neutral", "sad"]
SETTINGS = [  # (runtime, spinning, threads); ferlab's defaults first
    ("onnx", False, None), ("onnx", True, None), ("onnx", False, 1), ("onnx", True, 1),
    ("litert", None, None), ("litert", None, 1),
]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench live-runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faces", default="1,5")
    args = parser.parse_args(argv)

    from bench.live import write_video
    from bench.web_load import random_fercnn
    from ferlab.deploy.detection import DEFAULT_DETECTOR, make_detector
    from ferlab.deploy.formats.litert import LiteRTClassifier
    from ferlab.deploy.formats.onnx import OnnxClassifier
    from ferlab.deploy.live import run_live
    from ferlab.deploy.pipeline import FacePipeline

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-live-runtime-") as tmp:
        tmp = Path(tmp)
        models = {fmt: random_fercnn(tmp, fmt) for fmt in ("onnx", "litert")}
        for n in (int(k) for k in args.faces.split(",")):
            video = tmp / f"faces-{n}.mp4"
            write_video(video, args.frames, crowd=n > 1, detectors=[DEFAULT_DETECTOR])
            runs: dict[tuple, list[dict]] = {s: [] for s in SETTINGS}
            for repeat in range(args.repeats):
                for setting in SETTINGS if repeat % 2 == 0 else SETTINGS[::-1]:
                    runtime, spinning, threads = setting
                    clf = (OnnxClassifier(models["onnx"], CLASSES, num_threads=threads, spinning=spinning)
                           if runtime == "onnx" else LiteRTClassifier(models["litert"], CLASSES, num_threads=threads))
                    pipeline = FacePipeline(make_detector(DEFAULT_DETECTOR, stream=True), clf)
                    s = run_live(str(video), pipeline, display=False, report_every_s=float("inf"))
                    runs[setting].append(s)
                    print(f"{n} face(s) {runtime} spinning={spinning} threads={threads or 'default'}: {s['fps']:.1f} fps",
                          flush=True)
            for (runtime, spinning, threads), done in runs.items():
                rows.append({"faces_in_view": n, "runtime": runtime,
                             "spinning": "n/a" if spinning is None else ("on" if spinning else "off"),
                             "threads": threads or "default", "detector": DEFAULT_DETECTOR, "repeats": len(done),
                             "fps": round(float(np.median([s["fps"] for s in done])), 2),
                             "detect_ms": round(float(np.median([s["stages"]["detect"]["mean_ms"] for s in done])), 2),
                             "classify_ms": round(float(np.median([s["stages"]["classify"]["mean_ms"] for s in done])), 2)})
    for row in rows:
        default = next(r for r in rows if r["faces_in_view"] == row["faces_in_view"] and r["runtime"] == row["runtime"])
        row["fps_vs_default"] = round(row["fps"] / default["fps"], 3)
    path = write_table("live_runtime", rows)
    print(f"wrote {path}")
    print(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
