"""End-to-end `ferlab live` FPS and per-stage latency with the Keras, LiteRT and ONNX Runtime classifiers.

One 640x480 video (``--frames`` frames at 30 fps, mp4v): FER2013 test faces, a new one every 30 frames,
upscaled to 200 px and moving on a Lissajous path over a smooth background, so one face is in every
frame. Per backbone, one model (random init: the weights do not change the cost of a float model) is
saved as ``model.keras`` and exported with the same code as ``ferlab export`` (fp32, no quantisation), each
file with its class-names sidecar. Then, for each backend in turn, in its own process::

    ferlab live --source VIDEO --model FILE --no-display --report-every 0 --stats STATS.json

(the annotated video is written too, so drawing and encoding are measured), ``--repeats`` times per
backend, interleaved in rotating order; the table has the medians over the repeats of FPS and of each
stage's mean and p95 milliseconds (read, detect, crop, classify, track, draw, output = encoding the
annotated frame, total), and each backend's FPS, total and classify times as a ratio of Keras's. The
detection is the same work for every backend, so its spread across backends shows the machine's noise.
Absolute numbers are only comparable on one machine under the same load.

    python -m bench live                                   # fercnn at 48 px
    python -m bench live --backbones fercnn,mobilenetv2    # mobilenetv2 at --mobilenet-size (96) px
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, SHARED, write_table

CLASSES = ["angry", "anxious", "happy", "neutral", "sad"]
BACKENDS = ("keras", "litert", "onnx")
STAGES = ("read", "detect", "crop", "classify", "track", "draw", "output", "total")
FACE_SIDE, FPS, FACE_EVERY = 200, 30.0, 30


def fer_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """FER2013 test faces that the Haar detector finds when pasted alone (so the classifier runs every frame)."""
    import cv2

    from ferlab.deploy.detection.haar import HaarDetector

    root = SHARED / "data" / "fer2013" / "test"
    if not root.is_dir():
        sys.exit(f"bench live: {root} not found; put ../shared beside the repository or set FERLAB_SHARED")
    files = sorted(root.glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    detector = HaarDetector()
    faces = []
    for i in rng.permutation(len(files)):
        face = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
        frame = np.full((480, 640, 3), 128, np.uint8)
        frame[140:140 + FACE_SIDE, 220:220 + FACE_SIDE] = cv2.resize(face, (FACE_SIDE, FACE_SIDE))[..., None]
        if len(detector.detect(frame)) == 1:
            faces.append(face)
            if len(faces) == n:
                return faces
    return faces


def write_video(path: Path, frames: int, seed: int = 0) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    grid = rng.uniform(40, 220, (6, 8)).astype(np.float32)
    bg = cv2.GaussianBlur(cv2.resize(grid, (640, 480), interpolation=cv2.INTER_CUBIC), (0, 0), 15)
    bg = np.clip(bg[..., None] * np.array([0.9, 1.0, 1.1]), 0, 255).astype(np.uint8)
    faces = fer_faces(max(1, -(-frames // FACE_EVERY)), seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    if not writer.isOpened():
        sys.exit(f"bench live: OpenCV cannot write {path}")
    for t in range(frames):
        frame = bg.copy()
        x = int(220 + 200 * np.sin(t / 40.0))
        y = int(140 + 120 * np.sin(t / 27.0))
        big = cv2.resize(faces[(t // FACE_EVERY) % len(faces)], (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)
        frame[y:y + FACE_SIDE, x:x + FACE_SIDE] = big[..., None]
        writer.write(frame)
    writer.release()


def model_files(backbone: str, input_size: int, folder: Path) -> dict[str, Path]:
    """model.keras, model.tflite and model.onnx of one random-init model, each with its sidecar."""
    import ferlab.models  # noqa: F401  (quiet TensorFlow import)
    from ferlab.deploy.export import convert
    from ferlab.deploy.formats import sidecar_path
    from ferlab.models import ModelConfig, build_model

    model = build_model(ModelConfig(backbone=backbone, pooling="avg", input_size=input_size,
                                    num_classes=len(CLASSES), weights="none"))
    from ferlab.deploy.formats import FORMATS

    files = {name: folder / f"model{FORMATS.get(name).suffix}" for name in ("keras", "litert", "onnx")}
    model.save(files["keras"])
    for fmt in ("litert", "onnx"):
        blob, _ = convert(model, fmt, "none")
        files[fmt].write_bytes(blob)
    for file in files.values():
        sidecar_path(file).write_text(json.dumps({"classes": CLASSES}))
    return files


def run_backend(video: Path, model: Path, stats: Path, threads: int | None) -> dict:
    annotated = stats.with_suffix(".mp4")  # drawn and encoded, as when recording: draw and output are measured
    cmd = [sys.executable, "-m", "ferlab.cli", "live", "--source", str(video), "--model", str(model), "--no-display",
           "--out", str(annotated), "--report-every", "0", "--stats", str(stats), "--overwrite"]
    if threads and model.suffix != ".keras":
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"bench live: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(stats.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench live", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="fercnn", help="comma-separated; mobilenetv2 runs at --mobilenet-size")
    parser.add_argument("--mobilenet-size", type=int, default=96, help="input side for the ImageNet backbones")
    parser.add_argument("--frames", type=int, default=300, help="video length (30 fps)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT / ONNX Runtime threads (default: theirs)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per backend, interleaved; the table has medians")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    path = None
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        tmp = Path(tmp)
        video = tmp / "moving-face.mp4"
        write_video(video, args.frames)
        for backbone in args.backbones.split(","):
            size = 48 if backbone == "fercnn" else args.mobilenet_size
            folder = tmp / f"{backbone}-{size}"
            folder.mkdir()
            files = model_files(backbone, size, folder)
            runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
            for repeat in range(args.repeats):  # interleaved, each time in another order: load drifts alike
                order = BACKENDS[repeat % 3:] + BACKENDS[:repeat % 3]
                for backend in order:
                    s = run_backend(video, files[backend], folder / f"{backend}-{repeat}.json", args.threads)
                    runs[backend].append(s)
                    print(f"{backbone} {size}px {backend} (run {repeat + 1}): {s['fps']:.1f} fps, total "
                          f"{s['stages']['total']['mean_ms']:.1f} ms, detect {s['stages']['detect']['mean_ms']:.1f}, "
                          f"classify {s['stages']['classify']['mean_ms']:.2f} ms, {s['faces']} faces in "
                          f"{s['frames']} frames", flush=True)
            rows = []
            for backend in BACKENDS:
                done = runs[backend]
                row = {"backbone": backbone, "input_size": size, "backend": backend, "frames": done[0]["frames"],
                       "faces": done[0]["faces"], "repeats": len(done), "fps": float(np.median([s["fps"] for s in done])),
                       "run_threads": args.threads or "default",  # --threads of the run (Keras ignores it)
                       "threads": "default" if backend == "keras" else args.threads or "default"}
                for stage in STAGES:
                    for stat in ("mean_ms", "p95_ms"):
                        row[f"{stage}_{stat}"] = round(float(np.median([s["stages"][stage][stat] for s in done])), 3)
                rows.append(row)
            keras_row = rows[0]
            for row in rows:
                row["fps_vs_keras"] = round(row["fps"] / keras_row["fps"], 3)
                row["total_vs_keras"] = round(row["total_mean_ms"] / keras_row["total_mean_ms"], 3)
                row["classify_vs_keras"] = round(row["classify_mean_ms"] / keras_row["classify_mean_ms"], 3)
            path = write_table("live", rows, key=("backbone", "input_size", "backend", "run_threads"))
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    if path is not None:
        print(path.read_text())
