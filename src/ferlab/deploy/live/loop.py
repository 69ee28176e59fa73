"""Real time: camera or video -> detect -> classify -> track -> smooth -> draw, with per-stage latency.

Each frame goes through :class:`ferlab.deploy.pipeline.FacePipeline` (detect, crop, classify: Keras,
LiteRT or ONNX Runtime, whichever the model file is), then the tracker and smoother
(:mod:`ferlab.deploy.live.tracking`) and the drawing (:mod:`ferlab.deploy.live.draw`).

:func:`run_live` runs the loop over a source (camera index or video file), optionally shows a window (only
when OpenCV has a GUI and there is a display: never crashes headless), writes an annotated video and/or
per-frame JSON lines, and returns FPS and per-stage latency (mean and p95, in ms) with each track's
summary over time (:mod:`ferlab.deploy.timeline`); given an output, the timeline plot and summary are
written beside it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferlab.deploy.live.draw import TrackedFace, draw_tracks
from ferlab.deploy.live.sources import Outputs, Window, check_outputs, open_source, timeline_files
from ferlab.deploy.pipeline import FacePipeline
from ferlab.deploy.timeline import TimelineRecorder, write_timelines
from ferlab.deploy.tracking import DEFAULT_SMOOTHING, EMASmoother, FaceTracker
from ferlab.errors import FerlabError

STAGES = ("read", "detect", "crop", "classify", "track", "draw", "output", "total")
HUD_EVERY = 15  # frames between updates of the FPS drawn on the frame


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


def run_live(source: str | int | os.PathLike, pipeline: FacePipeline, *, smoothing: float = DEFAULT_SMOOTHING,
             out: str | os.PathLike | None = None, jsonl: str | os.PathLike | None = None,
             max_frames: int | None = None, display: bool | None = None, overwrite: bool = False,
             iou_threshold: float = 0.3, max_missed: int = 5, report_every_s: float = 5.0,
             on_report: Callable[[dict], None] | None = None, on_note: Callable[[str], None] | None = None) -> dict:
    """Run detect -> classify -> track -> smooth -> draw over ``source`` until it ends, ``max_frames`` frames,
    q/Esc in the window, or Ctrl-C; returns the stats (frames, fps, per-stage mean/p95 ms, tracks, ...).

    ``display``: True shows a window (falls back to headless, with a note, when none can be shown), False
    never does, None shows one when :func:`display_available`. ``out`` (annotated video) and ``jsonl`` (one
    record per frame: frame, time_s, tracks with id, box, smoothed probabilities, label) are written to
    temporary files and renamed when the run ends, so a failed run leaves no partial output. With either,
    the emotions over time per track go beside it: ``STEM.timeline.png`` and ``STEM.timeline.csv`` (the
    ``jsonl``'s stem, else ``out``'s). The stats' ``timeline`` holds each track's summary (seconds seen,
    share of that time per label, dominant label).
    """
    out = Path(out) if out is not None else None
    jsonl = Path(jsonl) if jsonl is not None else None
    check_outputs(out, jsonl, overwrite, source)
    if max_frames is not None and max_frames < 1:
        raise FerlabError(f"--max-frames: must be at least 1, got {max_frames}")
    loop = _LiveLoop(pipeline, EMASmoother(smoothing), FaceTracker(iou_threshold=iou_threshold, max_missed=max_missed))
    window = Window(display, on_note or (lambda text: None))
    cap, camera = open_source(source)
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps_in = fps_in if 0 < fps_in < 1000 else 30.0
    outputs = None
    try:
        outputs = Outputs(out, jsonl, fps_in)
        interrupted = loop.run(cap, camera, fps_in, max_frames, window, outputs, report_every_s, on_report)
    except OSError as exc:  # an output that cannot be written (permissions, disk full)
        if outputs is not None:
            outputs.abort()
        raise FerlabError(f"{exc.filename or '--out/--jsonl'}: cannot write ({exc.strerror}); choose another "
                          f"path") from None
    except BaseException:
        if outputs is not None:
            outputs.abort()
        raise
    finally:
        cap.release()
        window.close()
    if loop.frames == 0:
        outputs.abort()
        raise FerlabError(f"--source {source}: no frame could be read; the video is empty or the camera gave nothing")
    stats = loop.stats()
    detections = getattr(pipeline.detector, "detections", None)  # a DetectAndTrack counts its detection frames
    if detections is not None:
        stats["detected_frames"] = detections
    written = outputs.commit()
    timeline = loop.recorder.timeline(str(source), period_s=None if camera else 1.0 / fps_in)
    files = timeline_files(source, out, jsonl)
    if files is not None:
        png, csv = files
        write_timelines([timeline], {Path(str(source)): png}, csv)
        written.update(timeline_png=str(png), timeline_csv=str(csv))
    stats.update(source=str(source), backend=pipeline.classifier.backend, detector=pipeline.detector.name,
                 smoothing=smoothing, display=window.shown, interrupted=interrupted, outputs=written,
                 timeline=timeline.summary().to_dict("records"))
    return stats


class _LiveLoop:
    """The per-frame work of :func:`run_live` and its counters."""

    def __init__(self, pipeline: FacePipeline, smoother: EMASmoother, tracker: FaceTracker):
        self.pipeline, self.smoother, self.tracker = pipeline, smoother, tracker
        self.recorder = TimelineRecorder(pipeline.classes)
        self.times = StageTimes()
        self.frames = self.faces_seen = 0
        self.started = time.perf_counter()
        self.elapsed = 0.0

    def step(self, frame: np.ndarray) -> tuple[list[TrackedFace], dict[str, float]]:
        """Classify, track and smooth one frame; returns its tracked faces and stage times (ms)."""
        result = self.pipeline.analyze(frame)
        analyzed = time.perf_counter()
        ids = self.tracker.update([r.face.box for r in result.faces])
        tracked = [TrackedFace(tid, r.face, self.smoother.update(tid, r.probabilities), r.probabilities)
                   for tid, r in zip(ids, result.faces)]
        self.smoother.keep_only(self.tracker.tracks)
        return tracked, {**result.timings_ms, "track": (time.perf_counter() - analyzed) * 1e3}

    def run(self, cap, camera: bool, fps_in: float, max_frames: int | None, window: Window, outputs: Outputs,
            report_every_s: float, on_report) -> bool:
        """Frames until the source ends, ``max_frames``, the window asks to stop or Ctrl-C (returns True).
        The clock starts here, with the source open: opening a camera (0.5-3 s) is no frame's time."""
        classes = self.pipeline.classes
        self.started = time.perf_counter()
        last_report = hud_since = self.started
        hud = ""
        try:
            while max_frames is None or self.frames < max_frames:
                t0 = time.perf_counter()
                ok, frame = cap.read()
                if not ok:
                    break
                t_read = time.perf_counter()
                tracked, timings = self.step(frame)
                t_tracked = time.perf_counter()
                if outputs.video or window.shown:
                    draw_tracks(frame, tracked, classes, hud, self.pipeline.min_confidence)
                t_drawn = time.perf_counter()
                seconds = self.frames / fps_in if not camera else t0 - self.started
                records = [tf.to_dict(classes, self.pipeline.min_confidence) for tf in tracked]
                outputs.write({"frame": self.frames, "time_s": round(seconds, 4), "tracks": records}, frame)
                self.recorder.frame(self.frames, seconds, [(tf.track_id, tf.probabilities, r["label"])
                                                           for tf, r in zip(tracked, records)])
                if window.show(frame):
                    break
                t_end = time.perf_counter()
                self.times.add({"read": (t_read - t0) * 1e3, **timings, "draw": (t_drawn - t_tracked) * 1e3,
                                "output": (t_end - t_drawn) * 1e3, "total": (t_end - t0) * 1e3})
                self.frames += 1
                self.faces_seen += len(tracked)
                self.elapsed = t_end - self.started
                if self.frames % HUD_EVERY == 0:  # the frame rate over the last HUD_EVERY frames, drawn from the next one
                    hud = f"{HUD_EVERY / (t_end - hud_since):.1f} fps"
                    hud_since = t_end
                if on_report and t_end - last_report >= report_every_s:
                    last_report = t_end
                    on_report(self.stats())
        except KeyboardInterrupt:
            return True
        finally:
            self.elapsed = time.perf_counter() - self.started
        return False

    def stats(self) -> dict:
        seconds = self.elapsed
        return {"frames": self.frames, "seconds": round(seconds, 3),
                "fps": round(self.frames / seconds, 2) if seconds > 0 else 0.0,
                "faces": self.faces_seen, "tracks": self.tracker.next_id - 1, "stages": self.times.summary()}
