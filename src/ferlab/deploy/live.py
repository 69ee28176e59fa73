"""Real time: camera or video -> detect -> classify -> track -> smooth -> draw, with per-stage latency.

Each frame goes through :func:`ferlab.deploy.pipeline.analyze_frame` (detect, crop, classify: Keras, LiteRT
or ONNX Runtime, whichever the model file is), then

- :class:`FaceTracker` gives each face a track id that persists across frames: boxes are matched to the
  previous frame's tracks greedily by IoU, falling back to centre distance (relative to the box size) for a
  face that moved fast; a track unseen for ``max_missed`` frames is dropped;
- :class:`EMASmoother` keeps an exponential moving average of each track's probabilities
  (``p <- alpha * p_frame + (1 - alpha) * p``), so the label does not flicker from frame to frame;
- :func:`draw_tracks` draws each face's box, track id, label and per-class bars.

:func:`run_live` runs the loop over a source (camera index or video file), optionally shows a window (only
when OpenCV has a GUI and there is a display: never crashes headless), writes an annotated video and/or
per-frame JSON lines, and returns FPS and per-stage latency (mean and p95, in ms).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferlab.deploy.detect import DEFAULT_MARGIN, Face, FaceDetector
from ferlab.deploy.pipeline import analyze_frame
from ferlab.deploy.runtime import BACKENDS, FaceClassifier
from ferlab.errors import FerlabError

STAGES = ("read", "detect", "crop", "classify", "track", "draw", "output", "total")
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
DEFAULT_SMOOTHING = 0.35
WINDOW = "ferlab live (q to quit)"
HUD_EVERY = 15  # frames between updates of the FPS drawn on the frame


# ---------------------------------------------------------------------------------------------- tracking
def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Distance between box centres, in units of the boxes' mean side."""
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    side = (max(a[2], a[3]) + max(b[2], b[3])) / 2
    return float(np.hypot(dx, dy) / side) if side > 0 else float("inf")


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    hits: int = 1  # frames in which it was seen
    missed: int = 0  # frames since it was last seen


class FaceTracker:
    """Keeps an id per face across frames (greedy IoU matching, centre-distance fallback)."""

    def __init__(self, iou_threshold: float = 0.3, max_distance: float = 0.6, max_missed: int = 5):
        self.iou_threshold, self.max_distance, self.max_missed = iou_threshold, max_distance, max_missed
        self.tracks: dict[int, Track] = {}
        self.next_id = 1

    def update(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        """Match this frame's boxes to the tracks; returns the track id of each box, in order."""
        pairs = []  # (priority, track id, box index): IoU matches first (best first), then the nearest centres
        for tid, track in self.tracks.items():
            for j, box in enumerate(boxes):
                overlap = iou(track.box, box)
                if overlap >= self.iou_threshold:
                    pairs.append((-1.0 - overlap, tid, j))
                else:
                    distance = centre_distance(track.box, box)
                    if distance <= self.max_distance:
                        pairs.append((distance, tid, j))
        pairs.sort()
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, tid, j in pairs:
            if tid in used or ids[j] is not None:
                continue
            ids[j] = tid
            used.add(tid)
            track = self.tracks[tid]
            track.box, track.hits, track.missed = tuple(boxes[j]), track.hits + 1, 0
        for tid in list(self.tracks):
            if tid not in used:
                self.tracks[tid].missed += 1
                if self.tracks[tid].missed > self.max_missed:
                    del self.tracks[tid]
        for j, box in enumerate(boxes):
            if ids[j] is None:
                ids[j] = self.next_id
                self.tracks[self.next_id] = Track(self.next_id, tuple(box))
                self.next_id += 1
        return ids  # type: ignore[return-value]


class EMASmoother:
    """Exponential moving average of class probabilities per track: ``p <- alpha * p_new + (1 - alpha) * p``.

    ``alpha`` = 1 turns smoothing off; smaller values react more slowly and flicker less (at 30 fps, 0.35
    forgets a frame's weight to 5% within about 7 frames, a quarter of a second).
    """

    def __init__(self, alpha: float = DEFAULT_SMOOTHING):
        if not 0 < alpha <= 1:
            raise FerlabError(f"--smoothing: alpha must be in (0, 1] (1 = no smoothing), got {alpha}")
        self.alpha = alpha
        self.state: dict[int, np.ndarray] = {}

    def update(self, key: int, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, np.float64)
        previous = self.state.get(key)
        smoothed = p if previous is None else self.alpha * p + (1.0 - self.alpha) * previous
        self.state[key] = smoothed
        return smoothed.astype(np.float32)

    def keep_only(self, keys) -> None:
        """Forget the tracks that are gone."""
        for key in set(self.state) - set(keys):
            del self.state[key]


def label_flips(labels: list) -> int:
    """How often consecutive labels differ."""
    return sum(a != b for a, b in itertools.pairwise(labels))


# ----------------------------------------------------------------------------------------------- drawing
PALETTE = [(60, 60, 230), (200, 120, 40), (40, 200, 240), (180, 180, 180), (200, 80, 60), (40, 200, 80),
           (200, 60, 200), (120, 120, 40)]  # BGR, one per class index


@dataclass
class TrackedFace:
    track_id: int
    face: Face
    probabilities: np.ndarray  # smoothed
    raw: np.ndarray  # this frame's

    def label(self, classes: list[str]) -> str:
        return classes[int(np.argmax(self.probabilities))]

    def to_dict(self, classes: list[str]) -> dict:
        k = int(np.argmax(self.probabilities))
        return {"id": self.track_id, "box": [int(v) for v in self.face.box], "label": classes[k],
                "confidence": round(float(self.probabilities[k]), 4),
                "probabilities": {c: round(float(p), 4) for c, p in zip(classes, self.probabilities)}}


def draw_tracks(frame: np.ndarray, faces: list[TrackedFace], classes: list[str], hud: str | None = None) -> np.ndarray:
    """Boxes, ``#id label confidence`` and a bar per class beside each face, drawn on ``frame`` (BGR, in place)."""
    height, width = frame.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for tf in faces:
        x, y, w, h = tf.face.box
        k = int(np.argmax(tf.probabilities))
        colour = PALETTE[k % len(PALETTE)]
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        text = f"#{tf.track_id} {classes[k]} {tf.probabilities[k]:.0%}"
        (tw, th), _ = cv2.getTextSize(text, font, 0.55, 1)
        ty = y - 6 if y - th - 8 >= 0 else y + h + th + 6
        cv2.rectangle(frame, (x, ty - th - 4), (x + tw + 4, ty + 4), colour, -1)
        cv2.putText(frame, text, (x + 2, ty), font, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        bar_w, row = 70, 14
        name_w = 58
        bx = x + w + 6 if x + w + 6 + name_w + bar_w < width else max(0, x - 6 - name_w - bar_w)
        for i, (c, p) in enumerate(zip(classes, tf.probabilities)):
            by = y + i * row
            if by + row > height:
                break
            cv2.putText(frame, c[:7], (bx, by + 10), font, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + bar_w, by + row - 3), (70, 70, 70), -1)
            cv2.rectangle(frame, (bx + name_w, by + 2), (bx + name_w + round(bar_w * float(p)), by + row - 3),
                          PALETTE[i % len(PALETTE)], -1)
    if hud:
        cv2.putText(frame, hud, (8, 20), font, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, hud, (8, 20), font, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


# ----------------------------------------------------------------------------------------------- sources
def display_available() -> tuple[bool, str]:
    """Whether a window can be shown: OpenCV built with a GUI, and (on Linux) a display to show it on."""
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        return False, "this OpenCV has no GUI (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    return True, ""


def open_source(source: str | int | os.PathLike) -> tuple[cv2.VideoCapture, bool]:
    """A capture for a camera index ("0", 1, ...) or a video file; returns it and whether it is a camera."""
    text = str(source)
    if text.isdigit():
        cap = cv2.VideoCapture(int(text))
        if not cap.isOpened():
            cap.release()
            raise FerlabError(f"--source {text}: cannot open camera {text}; check that it is connected and free, "
                              f"or give a video file")
        return cap, True
    path = Path(text)
    if not path.is_file():
        raise FerlabError(f"--source {path}: no such video file; give a camera index (0) or a video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise FerlabError(f"--source {path}: OpenCV cannot open this video; convert it, e.g. to mp4")
    return cap, False


def check_outputs(out: Path | None, jsonl: Path | None, overwrite: bool) -> None:
    """Fail before any work on an unknown extension or an existing output without --overwrite."""
    if out is not None and out.suffix.lower() not in VIDEO_CODECS:
        raise FerlabError(f"--out {out}: unknown video extension {out.suffix!r}; use {', '.join(VIDEO_CODECS)}")
    if jsonl is not None and jsonl.suffix.lower() != ".jsonl":
        raise FerlabError(f"--jsonl {jsonl}: expected a .jsonl file")
    for option, path in (("--out", out), ("--jsonl", jsonl)):
        if path is not None and path.exists() and not overwrite:
            raise FerlabError(f"{option} {path}: already exists; choose another path or pass --overwrite")
    if out is not None and jsonl is not None and out.resolve() == jsonl.resolve():
        raise FerlabError("--out and --jsonl: give two different files")


def resolve_model(model: str | os.PathLike, backend: str = "auto") -> Path:
    """The model file to load for ``backend``: auto takes ``model`` as it is; litert/onnx given a run directory
    take its ``exports/model.tflite|onnx`` (written by ``ferlab export``)."""
    model = Path(model)
    if backend not in ("auto", *BACKENDS):
        raise FerlabError(f"--backend: unknown backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    if backend == "auto" or not model.exists():
        return model  # load_classifier explains a missing path
    suffix = {"keras": ".keras", "litert": ".tflite", "onnx": ".onnx"}[backend]
    if model.is_dir():
        if backend == "keras":
            return model
        exported = model / "exports" / f"model{suffix}"
        if not exported.is_file():
            raise FerlabError(f"--backend {backend}: {exported} not found; export it first: "
                              f"ferlab export {model} --format {backend}")
        return exported
    if model.suffix.lower() != suffix:
        raise FerlabError(f"--backend {backend}: {model} is not a {suffix} file; give a {suffix} file, "
                          f"its run directory, or --backend auto")
    return model


# -------------------------------------------------------------------------------------------------- loop
@dataclass
class StageTimes:
    """Milliseconds per stage per frame."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, timings: dict[str, float]) -> None:
        for stage, ms in timings.items():
            self.samples.setdefault(stage, []).append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: {"mean_ms": round(float(np.mean(v)), 3), "p95_ms": round(float(np.percentile(v, 95)), 3)}
                for stage, v in self.samples.items() if v}


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def run_live(source: str | int | os.PathLike, classifier: FaceClassifier, detector: FaceDetector, *,
             smoothing: float = DEFAULT_SMOOTHING, out: str | os.PathLike | None = None,
             jsonl: str | os.PathLike | None = None, max_frames: int | None = None, display: bool | None = None,
             all_faces: bool = True, overwrite: bool = False, margin: float = DEFAULT_MARGIN,
             iou_threshold: float = 0.3, max_missed: int = 5, report_every_s: float = 5.0,
             on_report: Callable[[dict], None] | None = None, on_note: Callable[[str], None] | None = None) -> dict:
    """Run detect -> classify -> track -> smooth -> draw over ``source`` until it ends, ``max_frames`` frames,
    q/Esc in the window, or Ctrl-C; returns the stats (frames, fps, per-stage mean/p95 ms, tracks, ...).

    ``display``: True shows a window (falls back to headless, with a note, when none can be shown), False
    never does, None shows one when :func:`display_available`. ``out`` (annotated video) and ``jsonl`` (one
    record per frame: frame, time_s, tracks with id, box, smoothed probabilities, label) are written to
    temporary files and renamed when the run ends, so a failed run leaves no partial output.
    """
    out = Path(out) if out is not None else None
    jsonl = Path(jsonl) if jsonl is not None else None
    check_outputs(out, jsonl, overwrite)
    if max_frames is not None and max_frames < 1:
        raise FerlabError(f"--max-frames: must be at least 1, got {max_frames}")
    smoother = EMASmoother(smoothing)
    note = on_note or (lambda text: None)
    can_show, why = display_available()
    show = can_show if display is None else (display and can_show)
    if display and not can_show:
        note(f"no window: {why}; running headless")
    cap, camera = open_source(source)
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps_in = fps_in if 0 < fps_in < 1000 else 30.0
    tracker = FaceTracker(iou_threshold=iou_threshold, max_missed=max_missed)
    classes = classifier.classes
    times = StageTimes()
    writer = None
    temps: list[Path] = []
    jsonl_fh = None
    frames = faces_seen = 0
    interrupted = False
    started = last_report = hud_since = time.perf_counter()
    hud = ""
    try:
        if jsonl is not None:
            temps.append(_temp_sibling(jsonl))
            jsonl.parent.mkdir(parents=True, exist_ok=True)
            jsonl_fh = open(temps[-1], "w", encoding="utf-8")  # noqa: SIM115  (closed on every path below)
        while max_frames is None or frames < max_frames:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                break
            t_read = time.perf_counter()
            result = analyze_frame(frame, detector, classifier, all_faces=all_faces, margin=margin)
            t_analyzed = time.perf_counter()
            ids = tracker.update([r.face.box for r in result.faces])
            tracked = [TrackedFace(tid, r.face, smoother.update(tid, r.probabilities), r.probabilities)
                       for tid, r in zip(ids, result.faces)]
            smoother.keep_only(tracker.tracks)
            t_tracked = time.perf_counter()
            if out is not None or show:
                draw_tracks(frame, tracked, classes, hud)
            t_drawn = time.perf_counter()
            seconds = frames / fps_in if not camera else t0 - started
            if jsonl_fh is not None:
                jsonl_fh.write(json.dumps({"frame": frames, "time_s": round(seconds, 4),
                                           "tracks": [tf.to_dict(classes) for tf in tracked]}) + "\n")
            if out is not None:
                if writer is None:
                    temps.append(_temp_sibling(out))
                    out.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(temps[-1]), cv2.VideoWriter_fourcc(*VIDEO_CODECS[out.suffix.lower()]),
                                             fps_in, (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise FerlabError(f"--out {out}: OpenCV cannot write this video format here; try .avi or .mp4")
                writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            if show:
                try:
                    cv2.imshow(WINDOW, frame)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error as exc:
                    show = False
                    note(f"no window ({str(exc).strip().splitlines()[-1]}); running headless")
                    key = -1
                if key in (ord("q"), 27):
                    break
            t_end = time.perf_counter()
            times.add({"read": (t_read - t0) * 1e3, **result.timings_ms, "track": (t_tracked - t_analyzed) * 1e3,
                       "draw": (t_drawn - t_tracked) * 1e3, "output": (t_end - t_drawn) * 1e3,
                       "total": (t_end - t0) * 1e3})
            frames += 1
            faces_seen += len(tracked)
            if frames % HUD_EVERY == 0:  # the frame rate over the last HUD_EVERY frames, drawn from the next one
                hud = f"{HUD_EVERY / (t_end - hud_since):.1f} fps"
                hud_since = t_end
            if t_end - last_report >= report_every_s:
                last_report = t_end
                if on_report:
                    on_report(_stats(frames, t_end - started, times, faces_seen, tracker))
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        if jsonl_fh is not None:
            jsonl_fh.close()
        if writer is not None:
            writer.release()
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        cap.release()
        if show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    elapsed = time.perf_counter() - started
    if frames == 0:
        if jsonl_fh is not None:
            jsonl_fh.close()
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise FerlabError(f"--source {source}: no frame could be read; the video is empty or the camera gave nothing")
    written = {}
    if jsonl_fh is not None:
        jsonl_fh.flush()
        os.fsync(jsonl_fh.fileno())
        jsonl_fh.close()
        os.replace(_temp_sibling(jsonl), jsonl)
        written["jsonl"] = str(jsonl)
    if writer is not None:
        writer.release()
        os.replace(_temp_sibling(out), out)
        written["out"] = str(out)
    stats = _stats(frames, elapsed, times, faces_seen, tracker)
    stats.update(source=str(source), backend=classifier.backend, detector=getattr(detector, "name", ""),
                 smoothing=smoothing, display=show, interrupted=interrupted, outputs=written)
    return stats


def _stats(frames: int, seconds: float, times: StageTimes, faces: int, tracker: FaceTracker) -> dict:
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "faces": faces, "tracks": tracker.next_id - 1, "stages": times.summary()}
