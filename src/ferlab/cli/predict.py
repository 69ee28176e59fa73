"""``ferlab predict``."""

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
    progress_bar,
)
from ferlab.cli.show import print_predict_summary
from ferlab.deploy.detection import DEFAULT_DETECTOR
from ferlab.deploy.media import DEFAULT_MAX_PIXELS
from ferlab.deploy.pipeline import check_min_confidence


def predict_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Images, videos, or folders of them (searched recursively).", show_default=False)],
    model: ModelOption = None,
    out: Annotated[Path | None, typer.Option(help="results.csv or results.jsonl, one row per face (default: CSV on stdout).")] = None,
    all_faces: AllFacesOption = True,
    detector: DetectorOption = DEFAULT_DETECTOR,
    detector_model: DetectorModelOption = None,
    every: Annotated[int, typer.Option(help="Videos: analyse every N-th frame.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Faces classified per batch (across frames and files).")] = 64,
    max_pixels: Annotated[int, typer.Option(help="Largest image, width x height; larger images are refused.")] = DEFAULT_MAX_PIXELS,
    min_confidence: MinConfidenceOption = 0.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Detect and classify the faces in images and videos: one row per face, then a summary per file.

    Columns: file, frame, time_s, face, x, y, w, h, score, angle, p_<class>..., label, confidence. A frame or
    image without a detected face gets a row with an empty label, so misses are counted.
    """
    model_file = model_path(model)
    check_min_confidence(min_confidence)
    positive("--every", every)
    positive("--batch-size", batch_size)
    positive("--max-pixels", max_pixels)
    from ferlab.deploy import predict as api
    from ferlab.deploy.media import collect_media
    from ferlab.deploy.pipeline import FacePipeline

    if out is not None:
        api.check_out(out, overwrite)
    inputs = collect_media(paths, every, max_pixels)  # bad paths and images fail here, before the model loads
    face_detector = make_detector_checked(detector, detector_model)
    classifier = load_classifier_with_status(model_file)
    pipeline = FacePipeline(face_detector, classifier, all_faces=all_faces, min_confidence=min_confidence)
    with progress_bar(f"predicting {len(inputs)} file(s)") as progress:
        rows = list(api.iter_rows(inputs, pipeline, every=every, batch_size=batch_size, max_pixels=max_pixels,
                                  progress=progress))
    table = api.to_frame(rows, classifier.classes)
    summary = api.summarize_files(table, classifier.classes)
    if out is None:
        typer.echo(api.table_text(table, ".csv"), nl=False)
        print_predict_summary(console, summary, classifier.classes)
    else:
        api.write_table(table, out)
        print_predict_summary(out_console, summary, classifier.classes)
        faces = int((table["label"] != "").sum())
        console.print(f"wrote {out}: {faces} face row(s), {len(table) - faces} row(s) without a face")
