"""The `ferlab predict` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MAX_SUMMARY_ROWS = 40


def register(app: typer.Typer) -> None:
    """Add `ferlab predict` to the CLI."""

    @app.command("predict")
    def predict_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Images, videos, or folders of them (searched recursively).", show_default=False)],
        model: Annotated[Path | None, typer.Option(help="A run directory, or a .keras, .tflite or .onnx model file.")] = None,
        out: Annotated[Path | None, typer.Option(help="results.csv or results.jsonl, one row per face (default: CSV on stdout).")] = None,
        all_faces: Annotated[bool, typer.Option("--all-faces/--largest", help="Classify every face, or only the largest one per frame.")] = True,
        detector: Annotated[str, typer.Option(help="Face detector: haar (built in) or yunet (needs --detector-model).")] = "haar",
        detector_model: Annotated[Path | None, typer.Option(help="yunet: its ONNX file (face_detection_yunet_2023mar.onnx).")] = None,
        every: Annotated[int, typer.Option(help="Videos: analyse every N-th frame.")] = 1,
        batch_size: Annotated[int, typer.Option(help="Faces classified per batch (across frames and files).")] = 64,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    ) -> None:
        """Detect and classify the faces in images and videos: one row per face, then a summary per file.

        Columns: file, frame, time_s, face, x, y, w, h, score, angle, p_<class>..., label, confidence. A frame or image without a detected face gets a row with an empty label, so misses are counted.
        """
        from ferlab.cli import console, out_console, progress_bar
        from ferlab.errors import FerlabError

        if model is None:
            raise FerlabError("--model: give a run directory, or a .keras, .tflite or .onnx model file")
        if every < 1:
            raise FerlabError(f"--every: must be at least 1, got {every}")
        if batch_size < 1:
            raise FerlabError(f"--batch-size: must be at least 1, got {batch_size}")
        from ferlab.deploy import predict as api

        if out is not None:
            api.check_out(out, overwrite)
        inputs = api.collect_inputs(paths, every)  # bad paths fail here, before the model loads
        from ferlab.deploy.detect import make_detector
        from ferlab.deploy.runtime import load_classifier

        face_detector = make_detector(detector, detector_model)
        with console.status("loading the model"):
            classifier = load_classifier(model)
        with progress_bar(f"predicting {len(inputs)} file(s)") as progress:
            rows = list(api.iter_rows(inputs, classifier, face_detector, all_faces=all_faces, every=every,
                                  batch_size=batch_size, progress=progress))
        table = api.to_frame(rows, classifier.classes)
        summary = api.summarize(table, classifier.classes)
        if out is None:
            typer.echo(api.table_text(table, ".csv"), nl=False)
            _print_summary(console, summary, classifier.classes)
        else:
            api.write_table(table, out)
            _print_summary(out_console, summary, classifier.classes)
            faces = int((table["label"] != "").sum())
            console.print(f"wrote {out}: {faces} face row(s), {len(table) - faces} row(s) without a face")


def _print_summary(target, summary, classes: list[str]) -> None:
    from rich.table import Table

    images = summary[summary["frames"] == 1]
    no_face_images = int((images["faces"] == 0).sum())
    title = (f"{len(summary)} file(s), {int(summary['frames'].sum())} frame(s)/image(s), {int(summary['faces'].sum())} "
             f"face(s); {int(summary['frames_without_face'].sum())} frame(s)/image(s) without a face"
             f"{f' ({no_face_images} image(s))' if no_face_images else ''}")
    target.print(title)
    table = Table()
    table.add_column("file", overflow="fold")
    for col in ("frames", "no face", "faces"):
        table.add_column(col, justify="right")
    for c in classes:
        table.add_column(c, justify="right")
    table.add_column("top")
    for row in summary.head(MAX_SUMMARY_ROWS).to_dict("records"):
        shares = [f"{row[f'share_{c}']:.0%}" if row["faces"] else "" for c in classes]
        table.add_row(str(row["file"]), str(row["frames"]), str(row["frames_without_face"]), str(row["faces"]),
                      *shares, row["top"] or "-")
    if len(summary) > MAX_SUMMARY_ROWS:
        table.add_row(f"... {len(summary) - MAX_SUMMARY_ROWS} more file(s)", *[""] * (4 + len(classes)))
    target.print(table)
