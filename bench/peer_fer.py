"""Real time and accuracy against a peer: ferlab's live pipeline vs the `fer` package (PyPI fer), CPU.

Speed: both tools process the same 640x480 video, built here deterministically (seed 0) from FER2013 official
test faces of the paper5 classes, each upscaled to ~200 px and shown for ``--per-face`` frames while moving
over a static synthetic background (MJPG AVI, 30 fps). Each tool runs with its own defaults (detector
settings, threads), headless. ferlab: :func:`ferlab.deploy.live.run_live` with the detector ``ferlab live``
builds for a video, ``make_detector(DEFAULT_DETECTOR, stream=True)`` (the registry's default, BlazeFace
short-range run by LiteRT when written, with the registry's stream options and detect-and-track; a fresh one
per pass), then crop, classify, track, EMA smoothing, per-frame JSON lines: what ``ferlab live --no-display``
runs; the table's ``pipeline`` names the detector and its settings as built. With the Keras model and the
exported ONNX / LiteRT files; its per-frame latency is run_live's own ``total`` stage (read to output). One
extra row runs the first ferlab backend with ferlab's Haar detector (``make_detector("haar", stream=True)``,
``--detector haar``): the detector ferlab had before BlazeFace, and the kind fer uses. When live.py is
absent, the same read -> ``FacePipeline.analyze`` loop written out here (``pipeline`` says which). fer:
``FER.detect_emotions(frame)`` with its default quantised .tflite model and with its .hdf5 Keras model, in
a subprocess in bench/.venv-fer (bench/peer_fer_worker.py); a frame's latency is from before
``cap.read()`` to ``detect_emotions``' return. Both sides first analyse ``--warmup`` untimed frames. The
passes alternate (fer, ferlab..., reversed every other repetition); frames/s is the median over ``--reps``
passes (frames / the pass's wall time), ``fps_vs_fer`` the median of the per-repetition ratios to fer's
default in the same repetition, latency mean the mean of the passes' means and p95 the median of their p95s.

Accuracy: the FER2013 official test crops of the paper5 classes (../shared/data/fer2013/test, 7,067 of the
7,178 48x48 faces: disgust dropped, fear and surprise scored as "anxious"), classified directly, no detection.
fer's 7 probabilities are mapped to paper5 by summing fear + surprise into anxious and dropping disgust,
renormalised over the 5 left. ferlab's model is fercnn trained here on FER2013's official *train* folder
only (``--split official``: train/val from train/, test from test/), so these faces are unseen by it.

    python -m bench peer-fer                      # creates bench/.venv-fer, trains and exports when missing
    python -m bench peer-fer --reps 5 --frames 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, SHARED, write_table

BENCH = REPO / "bench"
WORK = BENCH / "runs" / "peer-fer"
PREPARED = BENCH / "runs" / "prepared-fer2013-paper5-official"
RUN = WORK / "fercnn-avg"
VENV = BENCH / ".venv-fer"
REQUIREMENTS = BENCH / "requirements-fer.txt"
FER_VERSION = "25.10.3"
FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
HAAR_ROW = "+ Haar"  # the extra row: ferlab's first backend with ferlab's Haar detector
FER_TO_PAPER5 = {"angry": "angry", "fear": "anxious", "surprise": "anxious", "happy": "happy", "sad": "sad",
                 "neutral": "neutral"}  # disgust dropped
WIDTH, HEIGHT = 640, 480
RUN_TOML = """\
preset = "better"
data = "{data}"
[model]
backbone = "fercnn"
pooling = "avg"
weights = "none"
[train]
epochs = {epochs}
learning_rate = 0.002
warmup_epochs = 0.5
"""


def log(text: str) -> None:
    print(f"[peer-fer {time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---------------------------------------------------------------- setup: fer venv, ferlab model, data


def ensure_fer_venv() -> Path:
    """bench/.venv-fer with the pinned requirements and fer (--no-deps); created when missing."""
    python = VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {VENV} (python3.11, {REQUIREMENTS.name}, fer=={FER_VERSION} --no-deps)")
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    check = subprocess.run([str(python), "-c", "import fer; print(fer.__version__)"], capture_output=True, text=True,
                           check=False)
    if check.stdout.strip() != FER_VERSION:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", f"fer=={FER_VERSION}"], check=True)
    return python


def ensure_model(epochs: int) -> None:
    """Prepare FER2013 paper5 with the official split and train fercnn on it, unless RUN already has a model."""
    ferlab = [sys.executable, "-m", "ferlab.cli"] if not (Path(sys.executable).parent / "ferlab").exists() \
        else [str(Path(sys.executable).parent / "ferlab")]
    if not (PREPARED / "data.json").exists():
        log(f"preparing {PREPARED}")
        subprocess.run([*ferlab, "data", "prepare", "--source", str(SHARED / "data" / "fer2013"), "--protocol", "paper5",
                        "--split", "official", "--out", str(PREPARED)], check=True, cwd=REPO)
    if not (RUN / "model.keras").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        toml = WORK / "run.toml"
        toml.write_text(RUN_TOML.format(data=PREPARED.relative_to(REPO).as_posix(), epochs=epochs))
        log(f"training {RUN} ({epochs} epochs; 1.5-2.5 min an epoch on 2 busy cores)")
        subprocess.run([*ferlab, "train", "--config", str(toml), "--out", str(RUN)], check=True, cwd=REPO)
    for fmt, suffix in (("onnx", ".onnx"), ("litert", ".tflite")):
        out = RUN / "exports" / f"model{suffix}"
        if not out.exists():
            log(f"exporting {out}")
            subprocess.run([*ferlab, "export", str(RUN), "--format", fmt, "--out", str(out)], check=True, cwd=REPO)


def test_crops() -> tuple[Path, np.ndarray, list[str]]:
    """The official test crops of the paper5 classes: (N, 48, 48) uint8 saved as .npy, paper5 labels, paths."""
    from PIL import Image

    from ferlab.data.protocols import get_protocol

    protocol = get_protocol("paper5")
    root = SHARED / "data" / "fer2013" / "test"
    files, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        target = protocol.class_of(folder.name)
        if target is None:
            continue
        for f in sorted(folder.glob("*.jpg")):
            files.append(f)
            labels.append(target)
    npy = WORK / "test_crops.npy"
    if not npy.exists() or np.load(npy, mmap_mode="r").shape[0] != len(files):
        from ferlab.face import FACE_SIZE

        faces = np.stack([np.asarray(Image.open(f).convert("L").resize((FACE_SIZE, FACE_SIZE)), np.uint8) for f in files])
        WORK.mkdir(parents=True, exist_ok=True)
        np.save(npy, faces)
    return npy, np.asarray(labels), [str(f.relative_to(root)) for f in files]


def make_video(path: Path, frames: int, per_face: int, seed: int = 0) -> list[dict]:
    """The 640x480 MJPG video and its per-frame truth (paper5 label, face box); deterministic for a seed."""
    import cv2

    truth_file = path.with_suffix(".json")
    spec = {"frames": frames, "per_face": per_face, "seed": seed, "size": [WIDTH, HEIGHT]}
    if path.exists() and truth_file.exists():
        saved = json.loads(truth_file.read_text())
        if saved.get("spec") == spec:
            return saved["frames"]
    from ferlab.data.protocols import get_protocol

    protocol = get_protocol("paper5")
    root = SHARED / "data" / "fer2013" / "test"
    pool = [(f, protocol.class_of(d.name)) for d in sorted(p for p in root.iterdir() if p.is_dir())
            if protocol.class_of(d.name) for f in sorted(d.glob("*.jpg"))]
    rng = np.random.default_rng(seed)
    n_faces = -(-frames // per_face)
    chosen = [pool[i] for i in rng.choice(len(pool), n_faces, replace=False)]
    sides = rng.integers(184, 217, n_faces)
    # Static background: smooth colour field + finer texture + a few blurred "objects".
    low = cv2.resize(rng.uniform(60, 190, (4, 5, 3)).astype(np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    mid = cv2.resize(rng.normal(0, 14, (60, 80)).astype(np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    background = low + mid[..., None]
    for _ in range(8):
        x0, y0 = int(rng.integers(0, WIDTH - 60)), int(rng.integers(0, HEIGHT - 60))
        w, h = int(rng.integers(40, 200)), int(rng.integers(40, 200))
        cv2.rectangle(background, (x0, y0), (x0 + w, y0 + h), rng.uniform(30, 230, 3).tolist(), -1)
    background = np.clip(cv2.GaussianBlur(background, (0, 0), 2.0), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write MJPG video")
    truth = []
    face_img = None
    for t in range(frames):
        k = t // per_face
        if t % per_face == 0:
            gray = cv2.imread(str(chosen[k][0]), cv2.IMREAD_GRAYSCALE)
            face_img = cv2.cvtColor(cv2.resize(gray, (int(sides[k]),) * 2, interpolation=cv2.INTER_CUBIC),
                                    cv2.COLOR_GRAY2BGR)
        side = face_img.shape[0]
        # Lissajous path over the frame (about 9 px a frame at most), the face always fully inside.
        cx = WIDTH / 2 + (WIDTH / 2 - 112) * np.sin(2 * np.pi * t / 150)
        cy = HEIGHT / 2 + (HEIGHT / 2 - 112) * np.sin(2 * np.pi * t / 110 + 0.7)
        x, y = round(float(cx) - side / 2), round(float(cy) - side / 2)
        frame = background.copy()
        frame[y:y + side, x:x + side] = face_img
        writer.write(frame)
        truth.append({"label": chosen[k][1], "box": [x, y, side, side], "file": str(chosen[k][0].relative_to(root))})
    writer.release()
    truth_file.write_text(json.dumps({"spec": spec, "frames": truth}))
    return truth


# ---------------------------------------------------------------- the two sides


class FerWorker:
    """bench/peer_fer_worker.py in bench/.venv-fer, one JSON command per line."""

    def __init__(self, python: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.log = open(WORK / "fer_worker.log", "w")  # noqa: SIM115  (open for the worker's lifetime)
        self.proc = subprocess.Popen([str(python), str(BENCH / "peer_fer_worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=WORK)

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fer worker died; see {WORK / 'fer_worker.log'}")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"fer worker: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            self.ask(cmd="quit")
        except (RuntimeError, BrokenPipeError, json.JSONDecodeError):
            pass
        self.proc.wait(timeout=60)
        self.log.close()


def live_available() -> bool:
    try:
        import ferlab.deploy.live  # noqa: F401
    except ImportError:
        return False
    return True


def describe_detector(detector) -> str:
    """The ``pipeline`` column's words for a detector as built (``make_detector(..., stream=True)``), read
    from its attributes so they follow the registry's settings; one not known here, by its registry summary."""
    from ferlab.deploy.detection import DETECTORS
    from ferlab.deploy.detection.blazeface import BlazeFaceDetector
    from ferlab.deploy.detection.flow import DetectAndTrack
    from ferlab.deploy.detection.haar import HaarDetector

    if isinstance(detector, DetectAndTrack):
        every = "detect every frame" if detector.every == 1 else \
            f"detect every {detector.every} frames, optical flow between"
        return f"{describe_detector(detector.detector)}; {every}"
    if isinstance(detector, BlazeFaceDetector):
        tiles, stream = getattr(detector, "tiles", "off"), getattr(detector, "stream", False)
        regions = {"off": "whole frame", "always": "whole frame + tiles",
                   "fallback": "whole frame, around the last frame's faces it misses, one tile a frame in turn "
                   "(all when none is found)"
                   if stream else "whole frame, tiles where it finds none"}.get(tiles, f"tiles {tiles}")
        return f"BlazeFace {detector.model.name}-range (LiteRT): {regions}"
    if isinstance(detector, HaarDetector):
        retry = f"{'/'.join(f'{a:+g}' for a in detector.angles)} deg retry" if detector.angles else "no retry"
        return (f"Haar, scale {detector.scale_factor:g}, {detector.min_neighbors} neighbours, "
                f"min {detector.min_size} px, {retry}")
    return DETECTORS.get(detector.name).summary if detector.name in DETECTORS else detector.name


def ferlab_pass(video: Path, classifier, warmup: int, jsonl: Path, detector_name: str) -> dict:
    """One pass over the video with ``ferlab live``'s loop: :func:`ferlab.deploy.live.run_live` (what the CLI
    calls; headless, per-frame JSON lines for the video scores) with the detector the CLI builds for a video,
    ``make_detector(detector_name, stream=True)``; when live.py is absent, the same read ->
    FacePipeline.analyze loop written out here (no smoothing). The detector is stateful (tracking, the
    previous frame's faces), so the pass gets a fresh one and the warmup frames a throwaway one of their own."""
    import cv2

    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.pipeline import FacePipeline

    warm = FacePipeline(make_detector(detector_name, stream=True), classifier)
    cap = cv2.VideoCapture(str(video))
    for _ in range(warmup):  # Keras traces its predict function on the first call; not timed, as for fer
        ok, frame = cap.read()
        if ok:
            warm.analyze(frame)
    detector = make_detector(detector_name, stream=True)
    described = describe_detector(detector)
    pipeline = FacePipeline(detector, classifier)
    if live_available():
        cap.release()
        from ferlab.deploy.live import run_live

        stats = run_live(str(video), pipeline, display=False, jsonl=jsonl, overwrite=True,
                         report_every_s=float("inf"))
        stages = stats["stages"]
        boxes, probs = [], []
        for line in jsonl.read_text().splitlines():
            tracks = json.loads(line)["tracks"]
            best = max(tracks, key=lambda t: t["box"][2] * t["box"][3]) if tracks else None
            boxes.append(best["box"] if best else None)
            probs.append([best["probabilities"][c] for c in classifier.classes] if best else None)
        return {"frames": stats["frames"], "total_s": stats["seconds"], "mean_ms": stages["total"]["mean_ms"],
                "p95_ms": stages["total"]["p95_ms"], "detect_ms": stages["detect"]["mean_ms"],
                "classify_ms": stages["crop"]["mean_ms"] + stages["classify"]["mean_ms"], "boxes": boxes,
                "probs": probs, "detector": described}
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    frame_s, detect_ms, classify_ms, boxes, probs = [], [], [], [], []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        result = pipeline.analyze(frame)
        frame_s.append(time.perf_counter() - t0)
        detect_ms.append(result.timings_ms["detect"])
        classify_ms.append(result.timings_ms["crop"] + result.timings_ms["classify"])
        best = result.faces[0] if result.faces else None  # largest first
        boxes.append(list(best.face.box) if best else None)
        probs.append(best.probabilities.tolist() if best else None)
    total = time.perf_counter() - start
    cap.release()
    return {"frames": len(frame_s), "total_s": total, **summarise(frame_s), "detect_ms": float(np.mean(detect_ms)),
            "classify_ms": float(np.mean(classify_ms)), "boxes": boxes, "probs": probs, "detector": described}


def summarise(frame_s: list[float]) -> dict:
    ms = np.asarray(frame_s) * 1e3
    return {"mean_ms": float(ms.mean()), "p95_ms": float(np.percentile(ms, 95))}


def fer_to_paper5(scores: np.ndarray, classes: list[str]) -> np.ndarray:
    """fer's 7 scores (its label order) -> paper5 probabilities in ``classes`` order, renormalised."""
    scores = np.asarray(scores, np.float64)
    out = np.zeros((len(scores), len(classes)))
    for i, label in enumerate(FER_LABELS):
        if label in FER_TO_PAPER5:
            out[:, classes.index(FER_TO_PAPER5[label])] += scores[:, i]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / len(classes)), where=total > 0)


def video_scores(pass_result: dict, truth: list[dict], classes: list[str], probs: list | None) -> dict:
    """Share of frames whose largest detected face covers the true face (centre inside its box), and share
    of frames where that face also gets the true paper5 label (frames without it count as wrong)."""
    found = correct = 0
    for box, p, t in zip(pass_result["boxes"], probs, truth):
        if box is None:
            continue
        x, y, w, h = box
        tx, ty, ts, _ = t["box"]
        if tx <= x + w / 2 <= tx + ts and ty <= y + h / 2 <= ty + ts:
            found += 1
            correct += classes[int(np.argmax(p))] == t["label"]
    n = len(truth)
    return {"video_face_found": round(found / n, 4), "video_frame_acc": round(correct / n, 4)}


def crop_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    from ferlab.evaluate.metrics import classification_metrics

    y = np.array([classes.index(label) for label in labels])
    m = classification_metrics(y, probs, classes)
    return {"test_n": m["n"], "test_acc": round(m["accuracy"], 4), "test_acc_ci95_low": round(m["accuracy_ci95"][0], 4),
            "test_acc_ci95_high": round(m["accuracy_ci95"][1], 4), "macro_f1": round(m["macro_f1"], 4),
            **{f"recall_{c}": round(m["per_class"][c]["recall"], 3) for c in classes}}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench peer-fer", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="video length")
    parser.add_argument("--per-face", type=int, default=10, help="frames each face is shown")
    parser.add_argument("--reps", type=int, default=3, help="timed passes over the video per tool/backend")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames before each pass")
    parser.add_argument("--epochs", type=int, default=8, help="fercnn epochs when the model must be trained")
    parser.add_argument("--ferlab-backends", default="onnx,litert,keras", help="comma-separated: keras, onnx, litert")
    parser.add_argument("--fer-backends", default="tflite,keras", help="comma-separated: tflite (fer's default), keras")
    parser.add_argument("--threads", type=int, default=None,
                        help="ferlab's LiteRT / ONNX Runtime threads, as `ferlab live --threads` (default: the runtime's)")
    parser.add_argument("--no-haar-row", action="store_true",
                        help="skip the extra row: ferlab's first backend with ferlab's Haar detector (--detector "
                             "haar), which separates the detector's share from the rest")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    python = ensure_fer_venv()
    ensure_model(args.epochs)
    video = WORK / "video.avi"
    truth = make_video(video, args.frames, args.per_face)
    npy, labels, _ = test_crops()
    log(f"video {video} ({len(truth)} frames), {len(labels)} test crops")

    import ferlab
    import ferlab.models  # (quiet TensorFlow import)
    from ferlab.deploy.detection import DEFAULT_DETECTOR
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.live.tracking import DEFAULT_SMOOTHING

    model_files = {"keras": RUN / "model.keras", "onnx": RUN / "exports" / "model.onnx",
                   "litert": RUN / "exports" / "model.tflite"}
    ferlab_backends = args.ferlab_backends.split(",")
    fer_backends = args.fer_backends.split(",")
    classifiers = {b: load_classifier(RUN if b == "keras" else model_files[b], num_threads=args.threads)
                   for b in ferlab_backends}
    classes = next(iter(classifiers.values())).classes
    meta = json.loads((RUN / "metrics.json").read_text())
    loop = "ferlab.deploy.live.run_live" if live_available() else "FacePipeline.analyze loop (live.py absent)"

    worker = FerWorker(python)
    try:
        fer_info = worker.ask(cmd="info")
        log(f"fer worker: {fer_info['versions']}")
        rows: dict[str, dict] = {}
        # accuracy on the crops
        for b in fer_backends:
            answer = worker.ask(cmd="crops", backend=b, npy=str(npy))
            rows[f"fer-{b}"] = crop_metrics(fer_to_paper5(np.asarray(answer["probs"]), classes), labels, classes)
            log(f"fer {b}: test acc {rows[f'fer-{b}']['test_acc']:.4f}")
        faces = np.load(npy)
        for b, clf in classifiers.items():
            probs = np.concatenate([clf.predict(faces[i:i + 512]) for i in range(0, len(faces), 512)])
            rows[f"ferlab-{b}"] = crop_metrics(probs, labels, classes)
            log(f"ferlab {b}: test acc {rows[f'ferlab-{b}']['test_acc']:.4f}")

        # speed: alternate the passes, reversed every other repetition
        order = [("fer", b) for b in fer_backends[:1]] + [("ferlab", b) for b in ferlab_backends] + \
                [("fer", b) for b in fer_backends[1:]] + \
                ([] if args.no_haar_row else [("ferlab", f"{ferlab_backends[0]} {HAAR_ROW}")])
        passes: dict[str, list[dict]] = {f"{t}-{b}": [] for t, b in order}
        for rep in range(args.reps):
            for tool, b in order if rep % 2 == 0 else order[::-1]:
                if tool == "fer":
                    result = worker.ask(cmd="video", backend=b, path=str(video), warmup=args.warmup)
                    result.update(summarise(result["frame_s"]), detect_ms=1e3 * float(np.mean(result["detect_s"])),
                                  classify_ms=1e3 * float(np.mean(result["classify_s"])),
                                  probs=[None if s is None else fer_to_paper5(np.asarray([s]), classes)[0].tolist()
                                         for s in result["scores"]])
                else:
                    runtime = b.split()[0]
                    result = ferlab_pass(video, classifiers[runtime], args.warmup, WORK / f"live-{runtime}.jsonl",
                                         "haar" if b.endswith(HAAR_ROW) else DEFAULT_DETECTOR)
                passes[f"{tool}-{b}"].append(result)
                log(f"rep {rep + 1}/{args.reps} {tool} {b}: {result['frames'] / result['total_s']:.1f} frames/s")
    finally:
        worker.close()

    reference = f"fer-{fer_backends[0]}"
    ref_fps = [p["frames"] / p["total_s"] for p in passes[reference]]
    out = []
    fer_files = fer_info["model_files"]
    for key, runs in passes.items():
        tool, b = key.split("-", 1)
        runtime = b.split()[0]
        fps = [p["frames"] / p["total_s"] for p in runs]
        if tool == "fer":
            model = "mini-Xception (fer data/)"
            file = "emotion_model_quantized.tflite" if b == "tflite" else "emotion_model.hdf5"
            size = fer_files[file]
            version = f"fer {fer_info['versions']['fer']}, tensorflow-cpu {fer_info['versions']['tensorflow-cpu']}"
            pipeline = "FER.detect_emotions (Haar, scale 1.1, 5 neighbours, min 50 px)"
        else:
            model = f"fercnn avg, {meta.get('epochs_run')} epochs, FER2013 train/ only"
            file = model_files[runtime].relative_to(RUN).as_posix()
            size = model_files[runtime].stat().st_size
            from importlib import metadata

            lib = {"keras": "keras", "onnx": "onnxruntime", "litert": "ai-edge-litert"}[runtime]
            version = f"ferlab {ferlab.__version__}, {lib} {metadata.version(lib)}"
            name = "haar" if b.endswith(HAAR_ROW) else DEFAULT_DETECTOR
            smoothing = f"; tracking + EMA {DEFAULT_SMOOTHING:g}" if live_available() else ""
            pipeline = f"{loop} ({name}: {runs[0]['detector']}{smoothing})"
        out.append({
            "tool": tool, "backend": b if tool == "ferlab" else f"{b}{' (default)' if b == 'tflite' else ''}",
            "fps": round(float(np.median(fps)), 2),
            "fps_vs_fer": round(float(np.median([f / r for f, r in zip(fps, ref_fps)])), 3),
            "latency_mean_ms": round(float(np.mean([p["mean_ms"] for p in runs])), 2),
            "latency_p95_ms": round(float(np.median([p["p95_ms"] for p in runs])), 2),
            "detect_mean_ms": round(float(np.mean([p["detect_ms"] for p in runs])), 2),
            "classify_mean_ms": round(float(np.mean([p["classify_ms"] for p in runs])), 2),
            **video_scores(runs[0], truth, classes, runs[0]["probs"]),
            **rows[f"{tool}-{runtime}"], "model": model, "model_file": file, "model_file_bytes": size, "version": version,
            "pipeline": pipeline, "threads": "default" if tool == "fer" or runtime == "keras" or args.threads is None
            else args.threads, "frames": args.frames, "reps": args.reps, "fps_reps": ";".join(f"{f:.2f}" for f in fps),
            "video": f"{WIDTH}x{HEIGHT} MJPG, {args.frames} frames, {args.per_face} per face, seed 0",
            **({"train_epochs": meta.get("epochs_run"), "best_epoch": meta.get("best_epoch"),
                "val_acc": round(meta["val"]["accuracy"], 4),
                "leakfree_test_n": meta["test"]["n"], "leakfree_test_acc": round(meta["test"]["accuracy"], 4)}
               if tool == "ferlab" else {}),
        })
    path = write_table("peer_fer", out, key=("tool", "backend", "threads"))
    log(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    cols = ["tool", "backend", "fps", "fps_vs_fer", "latency_mean_ms", "latency_p95_ms", "detect_mean_ms",
            "classify_mean_ms", "video_face_found", "video_frame_acc", "test_acc", "macro_f1", "model_file_bytes"]
    import pandas as pd

    print(pd.DataFrame(out)[cols].to_string(index=False))
