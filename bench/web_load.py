"""Load test of ``ferlab serve``: concurrent WebSocket clients, each streaming its own FER2013 face.

Each client sends one 640x480 JPEG over and over: its own FER2013 test face (a different image, and a
different expression folder in turn) upscaled to 120-160 px and pasted at its own place on a blurred-noise
background, each frame tagged ``{"id": "c<client>-<n>"}``, the next frame only after the answer (one
in flight). Every answer is checked: its id must be the frame just sent by this client (else cross-talk),
it must not be an error, and it must hold exactly one face whose box is the one the server's detector
(``--detector``, the default's) finds in that client's own image (else mismatch; the places are 90+ px apart, so another client's face cannot
pass). Reports p50/p95/p99 latency (send to answer, per frame), answered frames per second over all
clients, the server's median timings and how many faces each classifier call batched.

    python -m bench web-load                          # 20 clients x 30 s against a fresh `ferlab serve`
    python -m bench web-load --model RUN_DIR --clients 20 --seconds 30
    python -m bench web-load --url http://127.0.0.1:8000   # an already running server

Without ``--model`` the server gets a random-init fercnn exported to LiteRT (``--format``: what a deployed
server runs; the weights do
not change its cost). Needs ``../shared/data/fer2013/test`` (or ``FERLAB_SHARED``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import SHARED, write_table

WIDTH, HEIGHT = 640, 480
MARGIN = 90  # face centres stay this far from the frame's edges
SIDES = (120, 140, 160)


@dataclass
class Scene:
    """One client's frame: the JPEG it streams and the box the server's detector must find in it."""

    index: int
    source: str
    jpeg: bytes
    box: tuple[int, int, int, int]


@dataclass
class ClientStats:
    index: int
    ok: int = 0
    errors: int = 0
    crosstalk: int = 0
    mismatches: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    detect_ms: list[float] = field(default_factory=list)
    classify_ms: list[float] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # the first few, for the report

    def note(self, text: str) -> None:
        if len(self.problems) < 3:
            self.problems.append(text)


def grid(n: int) -> list[tuple[int, int, int]]:
    """(centre x, centre y, face side) for n clients: a grid over the frame, sides cycling 120/140/160."""
    cols = max(1, math.ceil(math.sqrt(n * WIDTH / HEIGHT)))
    rows = max(1, math.ceil(n / cols))
    spots = []
    for i in range(n):
        r, c = divmod(i, cols)
        cx = MARGIN + (WIDTH - 2 * MARGIN) * (c / (cols - 1) if cols > 1 else 0.5)
        cy = MARGIN + (HEIGHT - 2 * MARGIN) * (r / (rows - 1) if rows > 1 else 0.5)
        spots.append((round(cx), round(cy), SIDES[i % len(SIDES)]))
    return spots


def compose(face: np.ndarray, cx: int, cy: int, side: int, seed: int) -> np.ndarray:
    """A 640x480 BGR frame: blurred noise with the grayscale face upscaled to ``side`` px centred at (cx, cy)."""
    import cv2

    rng = np.random.default_rng(seed)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH)).astype(np.uint8), (0, 0), 4)
    x, y = cx - side // 2, cy - side // 2
    frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def box_matches(box, expected, tolerance: float = 0.1) -> bool:
    """Same face: centres within ``tolerance`` x the side, sides within 1.5 x ``tolerance``."""
    x, y, w, h = box
    ex, ey, ew, eh = expected
    return (abs((x + w / 2) - (ex + ew / 2)) <= tolerance * ew and abs((y + h / 2) - (ey + eh / 2)) <= tolerance * eh
            and abs(w - ew) <= 1.5 * tolerance * ew)


def make_scenes(n: int, fer_test: Path | None = None, quality: int = 90, detector_name: str | None = None) -> list[Scene]:
    """n client frames from FER2013 test faces (expression folders in turn, sorted files, each used once),
    each kept only when the detector finds exactly its face, at its place, in the decoded JPEG."""
    import cv2

    from ferlab.deploy.detection import DEFAULT_DETECTOR, make_detector

    fer_test = Path(fer_test or SHARED / "data" / "fer2013" / "test")
    folders = sorted(p for p in fer_test.iterdir() if p.is_dir()) if fer_test.is_dir() else []
    if not folders:
        raise RuntimeError(f"{fer_test}: FER2013 test folders not found; put ../shared beside the repository "
                         f"or set FERLAB_SHARED")
    files = {f: sorted(f.glob("*.jpg")) + sorted(f.glob("*.png")) for f in folders}
    cursor = Counter()
    scenes = []
    for i, (cx, cy, side) in enumerate(grid(n)):
        folder = folders[i % len(folders)]
        for _attempt in range(60):
            if cursor[folder] >= len(files[folder]):
                raise RuntimeError(f"{folder}: no detectable face left for client {i}")
            path = files[folder][cursor[folder]]
            cursor[folder] += 1
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if face is None:
                continue
            ok, jpeg = cv2.imencode(".jpg", compose(face, cx, cy, side, seed=i), [cv2.IMWRITE_JPEG_QUALITY, quality])
            # The box a camera client's own detector gives (set up for a stream, as the server's), on its
            # first frame; a still image's search frames faces otherwise.
            detector = make_detector(detector_name or DEFAULT_DETECTOR, stream=True)
            found = detector.detect(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
            expected = (cx - side // 2, cy - side // 2, side, side)
            if ok and len(found) == 1 and box_matches(found[0].box, expected, tolerance=0.15):
                scenes.append(Scene(i, f"{folder.name}/{path.name}", jpeg.tobytes(), found[0].box))
                break
        else:
            raise RuntimeError(f"client {i}: no FER2013 face in {folder} was detected at its place in 60 tries")
    return scenes


async def _client(ws_url: str, scene: Scene, deadline: float, timeout: float) -> ClientStats:
    from websockets.asyncio.client import connect

    stats = ClientStats(scene.index)
    try:
        async with connect(ws_url, max_size=2 ** 24, open_timeout=timeout, ping_interval=None) as ws:
            n = 0
            while time.perf_counter() < deadline:
                frame_id = f"c{scene.index}-{n}"
                n += 1
                sent = time.perf_counter()
                await ws.send(json.dumps({"id": frame_id}))
                await ws.send(scene.jpeg)
                answer = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                stats.latencies_ms.append((time.perf_counter() - sent) * 1e3)
                faces = answer.get("faces") or []
                if answer.get("id") != frame_id:
                    stats.crosstalk += 1
                    stats.note(f"sent {frame_id}, got an answer for {answer.get('id')!r}")
                elif "error" in answer or answer.get("skipped"):
                    stats.errors += 1
                    stats.note(f"{frame_id}: {answer.get('error') or 'skipped'}")
                elif len(faces) != 1 or not box_matches(faces[0]["box"], scene.box):
                    stats.mismatches += 1
                    stats.note(f"{frame_id}: expected one face at {scene.box}, got {[f['box'] for f in faces]}")
                else:
                    stats.ok += 1
                    stats.labels[faces[0]["label"]] += 1
                    timings = answer["timings_ms"]
                    stats.server_ms.append(timings["server"])
                    stats.detect_ms.append(timings["detect"])
                    stats.classify_ms.append(timings["classify"])
    except Exception as exc:  # noqa: BLE001  (a dropped connection or a timeout is an error of this client)
        stats.errors += 1
        stats.note(f"client {scene.index}: {type(exc).__name__}: {exc}")
    return stats


def health(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/api/health", timeout=10) as response:
        return json.loads(response.read())


def run_load(base_url: str, scenes: list[Scene], seconds: float, timeout: float = 60.0) -> tuple[dict, list[ClientStats]]:
    """Stream every scene from its own client for ``seconds``; the summary and each client's stats."""
    ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/ws"
    before = health(base_url)

    async def all_clients():
        deadline = time.perf_counter() + seconds
        return await asyncio.gather(*(_client(ws_url, s, deadline, timeout) for s in scenes))

    start = time.perf_counter()
    clients = asyncio.run(all_clients())
    elapsed = time.perf_counter() - start
    after = health(base_url)
    latencies = np.concatenate([c.latencies_ms for c in clients] + [[]])
    frames = int(sum(len(c.latencies_ms) for c in clients))
    calls = after.get("classifier_calls", 0) - before.get("classifier_calls", 0)
    faces = after.get("faces_classified", 0) - before.get("faces_classified", 0)

    def pct(values, q):
        return round(float(np.percentile(values, q)), 1) if len(values) else float("nan")

    server = np.concatenate([c.server_ms for c in clients] + [[]])
    summary = {
        "clients": len(scenes), "seconds": seconds, "elapsed_s": round(elapsed, 1), "frames": frames,
        "frames_per_s": round(frames / elapsed, 2),
        "latency_p50_ms": pct(latencies, 50), "latency_p95_ms": pct(latencies, 95),
        "latency_p99_ms": pct(latencies, 99), "latency_max_ms": pct(latencies, 100),
        "server_p50_ms": pct(server, 50),
        "detect_p50_ms": pct(np.concatenate([c.detect_ms for c in clients] + [[]]), 50),
        "classify_p50_ms": pct(np.concatenate([c.classify_ms for c in clients] + [[]]), 50),
        "faces_per_classifier_call": round(faces / calls, 2) if calls else float("nan"),
        "min_frames_per_client": min((len(c.latencies_ms) for c in clients), default=0),
        "max_frames_per_client": max((len(c.latencies_ms) for c in clients), default=0),
        "errors": sum(c.errors for c in clients), "crosstalk": sum(c.crosstalk for c in clients),
        "mismatches": sum(c.mismatches for c in clients),
        "workers": after.get("workers"), "backend": after.get("backend"), "detector": after.get("detector"),
    }
    return summary, clients


def describe(summary: dict) -> str:
    s = summary
    return (f"{s['clients']} clients x {s['seconds']:g} s: {s['frames']} frames answered in {s['elapsed_s']} s = "
            f"{s['frames_per_s']} frames/s; latency p50 {s['latency_p50_ms']} ms, p95 {s['latency_p95_ms']} ms, "
            f"p99 {s['latency_p99_ms']} ms, max {s['latency_max_ms']} ms; server p50 {s['server_p50_ms']} ms "
            f"(detect {s['detect_p50_ms']}, classify {s['classify_p50_ms']}); {s['faces_per_classifier_call']} "
            f"faces per classifier call; frames per client {s['min_frames_per_client']}-{s['max_frames_per_client']}; "
            f"errors {s['errors']}, cross-talk {s['crosstalk']}, box mismatches {s['mismatches']}")


def random_fercnn(folder: Path, fmt: str = "litert") -> Path:
    """A random-init fercnn (5 classes) exported as ``ferlab export`` does (``fmt``: a format name; keras
    saves the .keras file), with its class-name sidecar: what a deployed server runs."""
    import ferlab.models  # noqa: F401
    from ferlab.deploy.export import convert
    from ferlab.deploy.formats import FORMATS, sidecar_path
    from ferlab.models import ModelConfig, build_model

    classes = ["angry", "anxious", "happy", "neutral", "sad"]
    model = build_model(ModelConfig(backbone="fercnn", pooling="avg", num_classes=len(classes)))
    path = folder / f"fercnn-random{FORMATS.get(fmt).suffix}"
    if fmt == "keras":
        model.save(path)
    else:
        path.write_bytes(convert(model, fmt, "none")[0])
    sidecar_path(path).write_text(json.dumps({"classes": classes}))
    return path


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Grayscale uint8 frames -> a YUV4MPEG2 4:2:0 file (Chromium's fake camera format); gray becomes
    video-range luma (16-235), chroma stays neutral."""
    height, width = frames[0].shape
    chroma = np.full((height // 2) * (width // 2), 128, np.uint8).tobytes()
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            luma = (16 + frame.astype(np.float32) * (219 / 255)).round().astype(np.uint8)
            out.write(b"FRAME\n" + luma.tobytes() + chroma + chroma)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, workers: int | None, log: Path, detector: str | None = None) -> subprocess.Popen:
    """``ferlab serve`` in a subprocess; returns once /api/health answers."""
    cmd = [sys.executable, "-m", "ferlab.cli", "serve", "--model", str(model), "--port", str(port),
           "--log-level", "warning"] + (["--workers", str(workers)] if workers else []) \
        + (["--detector", detector] if detector else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ferlab serve exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            health(f"http://127.0.0.1:{port}")
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"ferlab serve did not answer in 180 s:\n{log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench web-load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent WebSocket clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long every client streams")
    parser.add_argument("--model", type=Path, help="run directory or model file (default: a random-init fercnn "
                                                   "exported to --format)")
    parser.add_argument("--format", default="litert", help="the default model's format (keras, litert, onnx)")
    parser.add_argument("--url", help="an already running server, e.g. http://127.0.0.1:8000 (else one is started)")
    parser.add_argument("--workers", type=int, help="the started server's --workers (default: its own)")
    parser.add_argument("--detector", help="the started server's --detector (default: its own)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits for one answer")
    args = parser.parse_args(argv)

    scenes = make_scenes(args.clients, detector_name=args.detector)
    print(f"{len(scenes)} client scenes from FER2013 test faces: " + ", ".join(s.source for s in scenes[:4]) + ", ...",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-web-load-") as tmp:
        proc = None
        model_name = str(args.model) if args.model else f"fercnn (random init, {args.format})"
        if args.url:
            base_url, model_name = args.url.rstrip("/"), health(args.url.rstrip("/"))["model"]
        else:
            model = args.model or random_fercnn(Path(tmp), args.format)
            port = free_port()
            proc = start_server(model, port, args.workers, Path(tmp) / "serve.log", args.detector)
            base_url = f"http://127.0.0.1:{port}"
        try:
            summary, clients = run_load(base_url, scenes, args.seconds, timeout=args.timeout)
        finally:
            if proc is not None:
                stop_server(proc)
    print(describe(summary))
    for c in clients:
        for problem in c.problems:
            print(f"  {problem}")
    path = write_table("web_load", [{"model": model_name, **summary}],
                       key=("clients", "seconds", "workers", "backend", "detector"))
    print(f"wrote {path}")
    if summary["errors"] or summary["crosstalk"] or summary["mismatches"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
