"""End-to-end `ferlab live` frames/s and per-stage latency: detectors x classifier runtimes, one and five faces.

Two 640x480 videos (``--frames`` frames at 30 fps, mp4v) over a smooth background: one FER2013 test face
(a new one every 30 frames) upscaled to 200 px and moving on a Lissajous path; and five faces at 150 px,
each swaying around its own place. The faces are FER2013 test faces that every detector of the run finds
when pasted alone (so no detector is favoured). Per backbone, one model (random init: the weights do not
change the cost of a float model) is saved as ``model.keras`` and exported with the same code as
``ferlab export`` (fp32), each file with its class-names sidecar. Then for each video, detector and
backend, in its own process, what a user runs::

    ferlab live --source VIDEO --model FILE --detector NAME --no-display --jsonl FRAMES.jsonl --report-every 0 --stats STATS.json

(decode, detect, crop, classify, track, smooth, one JSON line per frame; ``--record`` also writes and
encodes the annotated video), ``--repeats`` times, interleaved in rotating order; the table has the medians
over the repeats of FPS and of each stage's mean and p95 ms, the frames on which the detector ran
(the rest carried by optical flow), the share of face-frames with a face found, and FPS as a ratio of
the ``haar`` row of the same video and backend in the same run (with ``--baseline REV``, also ``fps_vs_baseline``:
the median over the repeats of this code's FPS over REV's in the same repeat, neighbours in time under the same
load). Absolute numbers are only comparable on
one machine under the same load.

    python -m bench live                                     # fercnn at 48 px, blazeface and haar
    python -m bench live --backbones fercnn,mobilenetv2      # mobilenetv2 at --mobilenet-size (96) px
    python -m bench live --baseline HEAD --faces 1,5 --backends litert --detectors blazeface --table live_baseline
                                                             # the working tree against the last commit, interleaved
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
CROWD_SIDE = 150
CROWD_PLACES = [(40, 30), (245, 30), (450, 30), (140, 270), (350, 270)]  # top-left corners of the five faces


def fer_faces(n: int, detectors: list[str], side: int, seed: int = 0) -> list[np.ndarray]:
    """FER2013 test faces that each of ``detectors`` finds when pasted alone at ``side`` px."""
    import cv2

    from ferlab.deploy.detection import make_detector

    root = SHARED / "data" / "fer2013" / "test"
    if not root.is_dir():
        sys.exit(f"bench live: {root} not found; put ../shared beside the repository or set FERLAB_SHARED")
    files = sorted(root.glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    found_by = [make_detector(name) for name in detectors]
    faces = []
    for i in rng.permutation(len(files)):
        face = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
        frame = np.full((480, 640, 3), 128, np.uint8)
        frame[140:140 + side, 220:220 + side] = cv2.resize(face, (side, side))[..., None]
        if all(len(d.detect(frame)) == 1 for d in found_by):
            faces.append(face)
            if len(faces) == n:
                return faces
    return faces


def write_video(path: Path, frames: int, crowd: bool, detectors: list[str], seed: int = 0) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    grid = rng.uniform(40, 220, (6, 8)).astype(np.float32)
    bg = cv2.GaussianBlur(cv2.resize(grid, (640, 480), interpolation=cv2.INTER_CUBIC), (0, 0), 15)
    bg = np.clip(bg[..., None] * np.array([0.9, 1.0, 1.1]), 0, 255).astype(np.uint8)
    side = CROWD_SIDE if crowd else FACE_SIDE
    faces = fer_faces(len(CROWD_PLACES) if crowd else max(1, -(-frames // FACE_EVERY)), detectors, side, seed)
    faces = [cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC) for f in faces]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    if not writer.isOpened():
        sys.exit(f"bench live: OpenCV cannot write {path}")
    for t in range(frames):
        frame = bg.copy()
        if crowd:
            for k, (x0, y0) in enumerate(CROWD_PLACES):
                x, y = int(x0 + 15 * np.sin(t / 9.0 + k)), int(y0 + 12 * np.sin(t / 13.0 + 2 * k))
                x, y = min(max(x, 0), 640 - side), min(max(y, 0), 480 - side)
                frame[y:y + side, x:x + side] = faces[k][..., None]
        else:
            x = int(220 + 200 * np.sin(t / 40.0))
            y = int(140 + 120 * np.sin(t / 27.0))
            frame[y:y + side, x:x + side] = faces[(t // FACE_EVERY) % len(faces)][..., None]
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


def run_backend(video: Path, model: Path, detector: str, stats: Path, threads: int | None, record: bool,
                src: Path | None = None) -> dict:
    """One ``ferlab live`` run; ``src``: run the ferlab package found there (a baseline revision's src/)."""
    cmd = [sys.executable, "-m", "ferlab.cli", "live", "--source", str(video), "--model", str(model), "--no-display",
           "--detector", detector, "--jsonl", str(stats.with_suffix(".jsonl")), "--report-every", "0",
           "--stats", str(stats), "--overwrite"]
    if record:  # drawn and encoded, as when recording
        cmd += ["--out", str(stats.with_suffix(".mp4"))]
    if threads and model.suffix != ".keras":
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if src is not None:  # ahead of the editable install's path entry
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH", "")]))
    done = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench live: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(stats.read_text())


def baseline_src(revision: str, folder: Path) -> Path:
    """ferlab's src/ at a git revision, unpacked into ``folder`` by git archive (the repository is not touched)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "src"], cwd=REPO, capture_output=True,
                             check=False)
    if archive.returncode != 0:
        raise SystemExit(f"bench live: --baseline {revision}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench live", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="fercnn", help="comma-separated; mobilenetv2 runs at --mobilenet-size")
    parser.add_argument("--mobilenet-size", type=int, default=96, help="input side for the ImageNet backbones")
    parser.add_argument("--backends", default="litert,onnx,keras", help="comma-separated: " + ", ".join(BACKENDS))
    parser.add_argument("--detectors", default="blazeface,haar", help="comma-separated registry names")
    parser.add_argument("--faces", default="1,5", help="comma-separated: 1 (one moving face) and/or 5 (five faces)")
    parser.add_argument("--frames", type=int, default=300, help="video length (30 fps)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT / ONNX Runtime threads (default: ferlab's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, interleaved; the table has medians")
    parser.add_argument("--record", action="store_true", help="also write and encode the annotated video")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also run ferlab's code at this git revision (its src/, from git archive), interleaved "
                             "with the working tree's: rows DETECTOR@REV")
    parser.add_argument("--table", default="live", help="the results table: bench/results/TABLE.csv")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    detectors = args.detectors.split(",")

    started = time.perf_counter()
    path = None
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        tmp = Path(tmp)
        codes: dict[str | None, Path | None] = {None: None}  # revision -> its src/ (None: this working tree)
        if args.baseline:  # labelled by its short hash (HEAD moves)
            revision = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO, capture_output=True,
                                      text=True, check=False).stdout.strip() or args.baseline
            codes[revision] = baseline_src(args.baseline, tmp / "baseline")
        videos = {}
        for n in (int(k) for k in args.faces.split(",")):
            videos[n] = tmp / f"faces-{n}.mp4"
            write_video(videos[n], args.frames, crowd=n > 1, detectors=detectors)
        for backbone in args.backbones.split(","):
            size = 48 if backbone == "fercnn" else args.mobilenet_size
            folder = tmp / f"{backbone}-{size}"
            folder.mkdir()
            files = model_files(backbone, size, folder)
            combos = [(n, d, b, c) for n in videos for d in detectors for b in backends for c in codes]
            runs: dict[tuple, list[dict]] = {c: [] for c in combos}
            for repeat in range(args.repeats):  # interleaved, each time in another order: load drifts alike
                shift = repeat * len(combos) // max(1, args.repeats)
                for n, det, backend, code in combos[shift:] + combos[:shift]:
                    label = det if code is None else f"{det}@{code}"
                    s = run_backend(videos[n], files[backend], det, folder / f"{n}-{label}-{backend}-{repeat}.json",
                                    args.threads, args.record, codes[code])
                    runs[(n, det, backend, code)].append(s)
                    print(f"{backbone} {size}px, {n} face(s), {label}, {backend} (run {repeat + 1}): {s['fps']:.1f} fps, "
                          f"total {s['stages']['total']['mean_ms']:.1f} ms, detect {s['stages']['detect']['mean_ms']:.1f}, "
                          f"classify {s['stages']['classify']['mean_ms']:.2f} ms, {s['faces']} faces in "
                          f"{s['frames']} frames, detector on {s.get('detected_frames', s['frames'])}", flush=True)
            rows = []
            for (n, det, backend, code), done in runs.items():
                row = {"backbone": backbone, "input_size": size, "faces_in_view": n,
                       "detector": det if code is None else f"{det}@{code}",
                       "backend": backend, "frames": done[0]["frames"], "repeats": len(done),
                       "fps": float(np.median([s["fps"] for s in done])),
                       "detected_frames": int(np.median([s.get("detected_frames", s["frames"]) for s in done])),
                       "found_share": round(float(np.median([s["faces"] / (n * s["frames"]) for s in done])), 4),
                       "run_threads": args.threads or "default", "recorded": args.record,
                       "threads": "default" if backend == "keras" else args.threads or "default"}
                for stage in STAGES:
                    for stat in ("mean_ms", "p95_ms"):
                        values = [s["stages"][stage][stat] for s in done if stage in s["stages"]]
                        row[f"{stage}_{stat}"] = round(float(np.median(values)), 3) if values else None
                rows.append(row)
            for (n, det, backend, code), done in runs.items():  # this code against the baseline, repeat by repeat
                base = runs.get((n, det, backend, next((c for c in codes if c is not None), None)))
                if code is None and base is not None and len(codes) > 1:
                    row = next(r for r in rows if r["detector"] == det and r["backend"] == backend
                               and r["faces_in_view"] == n)
                    # Runs of the same repeat are neighbours in time, so they share the machine's load: the
                    # median of their ratios holds where load swings the frame rates themselves by 2x.
                    row["fps_vs_baseline"] = round(float(np.median([a["fps"] / b["fps"] for a, b in zip(done, base)])), 3)
            for row in rows:
                code = row["detector"].partition("@")[2]
                haar = next((r for r in rows if r["detector"] == ("haar@" + code if code else "haar")
                             and r["backend"] == row["backend"] and r["faces_in_view"] == row["faces_in_view"]), None)
                row["fps_vs_haar"] = round(row["fps"] / haar["fps"], 3) if haar else None
            path = write_table(args.table, rows, key=("backbone", "input_size", "faces_in_view", "detector", "backend",
                                                  "run_threads", "recorded"))
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    if path is not None:
        print(path.read_text())
