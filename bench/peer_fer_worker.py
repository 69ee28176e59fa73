"""The `fer` side of ``python -m bench peer-fer``: runs in bench/.venv-fer (fer + TensorFlow 2.15), not ferlab's venv.

It imports nothing from ferlab. It reads one JSON command per line on stdin and answers one JSON line on
stdout (TensorFlow and fer log to stderr), so the caller can alternate fer's passes with ferlab's in one run:

- ``{"cmd": "info"}``: versions and model files.
- ``{"cmd": "video", "backend": "tflite"|"keras", "path": VIDEO, "warmup": N}``: read the video with OpenCV
  and call ``FER.detect_emotions(frame)`` on every frame, fer's own Haar detector and defaults (the
  quantised LiteRT model is fer's default, ``use_tflite=True``; ``keras`` is its .hdf5 model). Per frame: the
  seconds from before ``cap.read()`` to after ``detect_emotions`` returns (decode + detect + crop +
  classify), the seconds inside fer's ``find_faces`` and ``_classify_emotions`` (timed by wrapping them),
  and the largest face's box and 7 scores (fer rounds them to 2 decimals).
- ``{"cmd": "crops", "backend": ..., "npy": FILE}``: classify (N, 48, 48) uint8 crops without detection,
  preprocessed the way ``detect_emotions`` does it: ``cv2.resize`` to the model's 64x64 (bilinear), float
  ``/ 255``, then ``(x - 0.5) * 2`` (fer's code scales to [-1, 1], not [0, 1]), through fer's own
  ``FER._classify_emotions``. Answers the unrounded 7 probabilities per crop, in fer's label order.
- ``{"cmd": "latency", "backend": ..., "runs": N}``: the median seconds of one ``_classify_emotions`` call on
  one preprocessed face (batch of 1, after 5 warm-up calls): fer's classify time per face.
- ``{"cmd": "quit"}``.

    bench/.venv-fer/bin/python bench/peer_fer_worker.py < commands.jsonl > answers.jsonl
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # FER._get_labels() order


def _fer(backend: str, cache: dict):
    if backend not in cache:
        from fer.fer import FER

        if backend not in ("tflite", "keras"):
            raise ValueError(f"backend {backend!r}: tflite or keras")
        detector = FER(use_tflite=backend == "tflite")
        timings = {"detect": [], "classify": []}
        for name, key in (("find_faces", "detect"), ("_classify_emotions", "classify")):
            original = getattr(detector, name)

            def timed(*args, _original=original, _key=key, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    timings[_key].append(time.perf_counter() - start)

            setattr(detector, name, timed)  # detect_emotions calls self.find_faces / self._classify_emotions
        cache[backend] = (detector, timings)
    return cache[backend]


def info() -> dict:
    from importlib import metadata

    import fer

    data = os.path.join(os.path.dirname(fer.__file__), "data")
    files = {name: os.path.getsize(os.path.join(data, name))
             for name in ("emotion_model_quantized.tflite", "emotion_model.hdf5")}
    versions = {p: metadata.version(p) for p in ("fer", "tensorflow-cpu", "numpy", "opencv-python-headless")}
    return {"versions": versions, "model_files": files, "labels": LABELS, "python": sys.version.split()[0]}


def video(backend: str, path: str, warmup: int, cache: dict) -> dict:
    detector, timings = _fer(backend, cache)
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open it")
    frames = []
    for _ in range(warmup):  # first calls build TF/XNNPACK state; not timed
        ok, frame = cap.read()
        if ok:
            detector.detect_emotions(frame)
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    for values in timings.values():
        values.clear()
    per_frame, detect_s, classify_s, boxes, scores = [], [], [], [], []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        n_detect, n_classify = len(timings["detect"]), len(timings["classify"])
        found = detector.detect_emotions(frame)
        per_frame.append(time.perf_counter() - t0)
        detect_s.append(sum(timings["detect"][n_detect:]))
        classify_s.append(sum(timings["classify"][n_classify:]))
        if found:
            best = max(found, key=lambda f: int(f["box"][2]) * int(f["box"][3]))
            boxes.append([int(v) for v in best["box"]])
            scores.append([float(best["emotions"][label]) for label in LABELS])
        else:
            boxes.append(None)
            scores.append(None)
        frames.append(len(found))
    total = time.perf_counter() - start
    cap.release()
    return {"frames": len(per_frame), "total_s": total, "frame_s": per_frame, "detect_s": detect_s,
            "classify_s": classify_s, "faces": frames, "boxes": boxes, "scores": scores}


def crops(backend: str, npy: str, cache: dict, chunk: int = 256) -> dict:
    detector, _ = _fer(backend, cache)
    faces = np.load(npy)
    size = (64, 64)  # input side of both of fer's models (emotion_model.hdf5 and the .tflite: (1, 64, 64, 1))
    probs = []
    start = time.perf_counter()
    for i in range(0, len(faces), chunk):
        batch = np.array([cv2.resize(f, size) for f in faces[i:i + chunk]], dtype="float32")
        batch = (batch / 255.0 - 0.5) * 2.0  # detect_emotions' preprocessing
        probs.append(np.asarray(detector._classify_emotions(batch), np.float32))
    seconds = time.perf_counter() - start
    probs = np.concatenate(probs)
    if probs.shape != (len(faces), len(LABELS)):
        raise RuntimeError(f"fer returned shape {probs.shape}")
    return {"probs": probs.round(6).tolist(), "seconds": seconds}


def latency(backend: str, runs: int, cache: dict) -> dict:
    detector, _ = _fer(backend, cache)
    face = ((np.random.default_rng(0).integers(0, 256, (1, 64, 64)).astype("float32") / 255.0) - 0.5) * 2.0
    for _ in range(5):
        detector._classify_emotions(face)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detector._classify_emotions(face)
        times.append(time.perf_counter() - start)
    return {"median_s": float(np.median(times)), "runs": runs}


def main() -> None:
    cache: dict = {}
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by TF/fer goes to stderr, answers stay on the real stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
            if cmd == "quit":
                break
            if cmd == "info":
                answer = info()
            elif cmd == "video":
                answer = video(msg["backend"], msg["path"], int(msg.get("warmup", 5)), cache)
            elif cmd == "crops":
                answer = crops(msg["backend"], msg["npy"], cache)
            elif cmd == "latency":
                answer = latency(msg["backend"], int(msg.get("runs", 50)), cache)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            answer = {"ok": True, **answer}
        except Exception as exc:  # noqa: BLE001  (report to the caller, keep serving)
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
