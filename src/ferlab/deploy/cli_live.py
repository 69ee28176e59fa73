"""The `ferlab live` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab live` to the CLI."""

    @app.command("live")
    def live_cmd(
        source: Annotated[str, typer.Option(help="Camera index (0, 1, ...) or a video file.")] = "0",
        model: Annotated[Path | None, typer.Option(help="A run directory, or a .keras, .tflite or .onnx model file.")] = None,
        backend: Annotated[str, typer.Option(help="auto (by the model file), keras, litert or onnx (a run directory's exports/model.tflite|onnx).")] = "auto",
        out: Annotated[Path | None, typer.Option(help="Write the annotated video here (.mp4, .avi, .mkv, .mov, .m4v).")] = None,
        jsonl: Annotated[Path | None, typer.Option(help="Write one JSON record per frame here (frame, time_s, tracks with id, box, smoothed probabilities, label).")] = None,
        max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
        display: Annotated[bool, typer.Option("--display/--no-display", help="Show a window (skipped, with a note, when OpenCV has no GUI or there is no display).")] = True,
        smoothing: Annotated[float, typer.Option(help="EMA weight of the newest frame in each track's probabilities, in (0, 1]; 1 = no smoothing.")] = 0.35,
        all_faces: Annotated[bool, typer.Option("--all-faces/--largest", help="Track every face, or only the largest one per frame.")] = True,
        detector: Annotated[str, typer.Option(help="Face detector: haar (built in) or yunet (needs --detector-model).")] = "haar",
        detector_model: Annotated[Path | None, typer.Option(help="yunet: its ONNX file (face_detection_yunet_2023mar.onnx).")] = None,
        threads: Annotated[int | None, typer.Option(help="LiteRT / ONNX Runtime threads (default: the runtime's).")] = None,
        report_every: Annotated[float, typer.Option(help="Print FPS and latency every this many seconds (0: only at the end).")] = 5.0,
        stats: Annotated[Path | None, typer.Option(help="Also write the final stats (FPS, per-stage mean/p95 ms) to this JSON file.")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing --out, --jsonl and --stats files.")] = False,
    ) -> None:
        """Detect, classify, track and smooth faces live from a camera or a video; print FPS and stage latency.

        Draws boxes, track ids, labels and per-class bars; prints FPS and per-stage latency (detect, crop,
        classify, track, draw, total: mean and p95) every --report-every seconds and at the end.

        Press q or Esc in the window to stop (Ctrl-C without a window); outputs are kept either way.
        """
        from ferlab.cli import console, out_console
        from ferlab.errors import FerlabError

        if model is None:
            raise FerlabError("--model: give a run directory, or a .keras, .tflite or .onnx model file")
        if threads is not None and threads < 1:
            raise FerlabError(f"--threads: must be at least 1, got {threads}")
        from ferlab.deploy.live import EMASmoother, check_outputs, resolve_model, run_live

        EMASmoother(smoothing)  # validates alpha before the model loads
        check_outputs(out, jsonl, overwrite)
        if stats is not None:
            if stats.suffix.lower() != ".json":
                raise FerlabError(f"--stats {stats}: expected a .json file")
            if stats.exists() and not overwrite:
                raise FerlabError(f"--stats {stats}: already exists; choose another path or pass --overwrite")
        if not source.isdigit() and not Path(source).is_file():
            raise FerlabError(f"--source {source}: no such video file; give a camera index (0) or a video file")
        model_file = resolve_model(model, backend)
        from ferlab.deploy.detect import make_detector
        from ferlab.deploy.runtime import load_classifier

        face_detector = make_detector(detector, detector_model)
        with console.status("loading the model"):
            classifier = load_classifier(model_file, num_threads=threads)

        def report(s: dict) -> None:
            total = s["stages"].get("total", {})
            console.print(f"frame {s['frames']}: {s['fps']:.1f} fps, {total.get('mean_ms', 0):.1f} ms/frame "
                          f"(p95 {total.get('p95_ms', 0):.1f}), {s['tracks']} track(s)")

        result = run_live(source, classifier, face_detector, smoothing=smoothing, out=out, jsonl=jsonl,
                          max_frames=max_frames, display=display, all_faces=all_faces, overwrite=overwrite,
                          report_every_s=report_every if report_every > 0 else float("inf"), on_report=report,
                          on_note=lambda text: console.print(text))
        _print_stats(out_console, result)
        if stats is not None:
            from ferlab.io import atomic_write_json

            atomic_write_json(stats, result)
        for path in (*result["outputs"].values(), *([str(stats)] if stats is not None else [])):
            console.print(f"wrote {path}")


def _print_stats(target, s: dict) -> None:
    from rich.table import Table

    title = (f"{s['source']}: {s['frames']} frames in {s['seconds']:.1f} s = {s['fps']:.1f} fps "
             f"({s['backend']} classifier, {s['detector']} detector, {s['tracks']} track(s)"
             f"{', interrupted' if s['interrupted'] else ''})")
    target.print(title)
    table = Table()
    table.add_column("stage")
    table.add_column("mean ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for stage, v in s["stages"].items():
        table.add_row(stage, f"{v['mean_ms']:.2f}", f"{v['p95_ms']:.2f}")
    target.print(table)
