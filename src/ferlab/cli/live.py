"""``ferlab live``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferlab.cli.common import (
    AllFacesOption,
    DetectorModelOption,
    DetectorOption,
    MinConfidenceOption,
    ModelOption,
    OverwriteOption,
    console,
    load_classifier_with_status,
    make_detector_checked,
    model_path,
    out_console,
    positive,
)
from ferlab.cli.show import print_live_stats, print_timeline_summary
from ferlab.deploy.detection import DEFAULT_DETECTOR
from ferlab.deploy.formats import FORMATS
from ferlab.deploy.live.sources import VIDEO_CODECS
from ferlab.deploy.live.tracking import DEFAULT_SMOOTHING
from ferlab.deploy.pipeline import check_min_confidence
from ferlab.errors import FerlabError


def live_cmd(
    source: Annotated[str, typer.Option(help="Camera index (0, 1, ...) or a video file.")] = "0",
    model: ModelOption = None,
    backend: Annotated[str, typer.Option(help=f"auto (by the model file), or a format ({FORMATS.choices()}): given a run directory, its model.keras or exports/model.SUFFIX.")] = "auto",
    out: Annotated[Path | None, typer.Option(help=f"Write the annotated video here ({', '.join(VIDEO_CODECS)}).")] = None,
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON record per frame here (frame, time_s, tracks with id, box, smoothed probabilities, label).")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    display: Annotated[bool, typer.Option("--display/--no-display", help="Show a window (skipped, with a note, when OpenCV has no GUI or there is no display).")] = True,
    smoothing: Annotated[float, typer.Option(help="EMA weight of the newest frame in each track's probabilities, in (0, 1]; 1 = no smoothing.")] = DEFAULT_SMOOTHING,
    all_faces: AllFacesOption = True,
    detector: DetectorOption = DEFAULT_DETECTOR,
    detector_model: DetectorModelOption = None,
    detect_every: Annotated[int | None, typer.Option(help="Detect every N frames; optical flow carries the boxes between, and a lost face is detected again at once (default: the detector's: 1 for BlazeFace, 3 for Haar).")] = None,
    threads: Annotated[int | None, typer.Option(help="LiteRT / ONNX Runtime threads (default: the runtime's).")] = None,
    report_every: Annotated[float, typer.Option(help="Print FPS and latency every this many seconds (0: only at the end).")] = 5.0,
    stats: Annotated[Path | None, typer.Option(help="Also write the final stats (FPS, per-stage mean/p95 ms) to this JSON file.")] = None,
    min_confidence: MinConfidenceOption = 0.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Detect, classify, track and smooth faces live from a camera or a video; print FPS and stage latency.

    Draws boxes, track ids, labels and per-class bars; prints FPS and per-stage latency (detect, crop,
    classify, track, draw, total: mean and p95) every --report-every seconds and at the end, then each
    track's summary (seconds seen, share of that time per emotion, dominant emotion). With --out or
    --jsonl, the emotions over time per track are also plotted beside it (STEM.timeline.png, with the
    summary in STEM.timeline.csv; --jsonl's stem, else --out's).

    Press q or Esc in the window to stop (Ctrl-C without a window); outputs are kept either way.
    """
    positive("--threads", threads)
    check_min_confidence(min_confidence)
    positive("--detect-every", detect_every)
    from ferlab.deploy.live import EMASmoother, check_outputs, run_live
    from ferlab.deploy.live.sources import open_source
    from ferlab.deploy.pipeline import FacePipeline

    EMASmoother(smoothing)  # validates alpha before the model loads
    check_outputs(out, jsonl, overwrite, source)
    if stats is not None:
        if stats.suffix.lower() != ".json":
            raise FerlabError(f"--stats {stats}: expected a .json file")
        if stats.exists() and not overwrite:
            raise FerlabError(f"--stats {stats}: already exists; choose another path or pass --overwrite")
    if not source.isdigit():
        open_source(source)[0].release()  # a missing or unreadable video fails before the model loads
    model_file = model_path(model, backend)
    pipeline = FacePipeline(make_detector_checked(detector, detector_model, stream=True, detect_every=detect_every),
                            load_classifier_with_status(model_file, num_threads=threads), all_faces=all_faces,
                            min_confidence=min_confidence)

    def report(s: dict) -> None:
        total = s["stages"].get("total", {})
        console.print(f"frame {s['frames']}: {s['fps']:.1f} fps, {total.get('mean_ms', 0):.1f} ms/frame "
                      f"(p95 {total.get('p95_ms', 0):.1f}), {s['tracks']} track(s)")

    result = run_live(source, pipeline, smoothing=smoothing, out=out, jsonl=jsonl, max_frames=max_frames,
                      display=display, overwrite=overwrite,
                      report_every_s=report_every if report_every > 0 else float("inf"), on_report=report,
                      on_note=lambda text: console.print(text))
    print_live_stats(result)
    if result["timeline"]:
        import pandas as pd

        print_timeline_summary(out_console, pd.DataFrame(result["timeline"]))
    if stats is not None:
        from ferlab.io import atomic_write_json

        atomic_write_json(stats, result)
    for path in (*result["outputs"].values(), *([str(stats)] if stats is not None else [])):
        console.print(f"wrote {path}")
