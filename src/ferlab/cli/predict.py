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
from ferlab.cli.show import print_predict_summary, print_timeline_summary
from ferlab.deploy.detection import DEFAULT_DETECTOR
from ferlab.deploy.media import DEFAULT_MAX_PIXELS
from ferlab.deploy.pipeline import check_min_confidence
from ferlab.errors import FerlabError


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
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first file that cannot be read or decoded, writing nothing (default: name it on stderr, skip it, analyse the rest, and exit with code 2 at the end).")] = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Detect and classify the faces in images and videos: one row per face, then a summary per file.

    Columns: file, frame, time_s, face, track, x, y, w, h, score, angle, p_<class>..., label, confidence. A
    frame or image without a detected face gets a row with an empty label, so misses are counted; track
    follows a face across a video's frames. For each video, with --out: its emotions over time per track
    as a plot (OUT_STEM.timeline.png) and a summary (OUT_STEM.timeline.csv) beside the results.
    """
    model_file = model_path(model)
    check_min_confidence(min_confidence)
    positive("--every", every)
    positive("--batch-size", batch_size)
    positive("--max-pixels", max_pixels)
    from ferlab.deploy import predict as api
    from ferlab.deploy.media import collect_media
    from ferlab.deploy.pipeline import FacePipeline
    from ferlab.deploy.timeline import check_timeline_paths, timeline_paths, write_timelines
    from ferlab.deploy.timeline import summary_table as timeline_summary

    if out is not None:
        api.check_out(out, overwrite)
    failures: list[str] = []
    inputs = collect_media(paths, every, max_pixels,  # bad paths and image headers are found before the model loads
                           on_error=None if strict else lambda path, exc: failures.append(str(exc)))
    if not inputs:  # nothing to go on with: one file's own error, or each bad one named and a last line
        if len(failures) == 1:
            raise FerlabError(failures[0])
        for reason in failures:
            skipped(reason)
        raise FerlabError(f"none of the {len(failures)} input(s) could be analysed (the 'skipped' lines above)")
    for reason in failures:
        skipped(reason)
    videos = [m.path for m in inputs if m.kind == "video"]
    if out is not None and videos:
        pngs, summary_csv = timeline_paths(out, videos)
        check_timeline_paths([*pngs.values(), summary_csv], overwrite)
    # One input alone fails as --strict does: there is nothing else to go on with.
    go_on = not strict and len(inputs) + len(failures) > 1

    def failed(path: Path, reason: str) -> None:
        failures.append(reason)
        skipped(reason)

    face_detector = make_detector_checked(detector, detector_model)
    classifier = load_classifier_with_status(model_file)
    pipeline = FacePipeline(face_detector, classifier, all_faces=all_faces, min_confidence=min_confidence)
    with progress_bar(f"predicting {len(inputs)} file(s)") as progress:
        rows = list(api.iter_rows(inputs, pipeline, every=every, batch_size=batch_size, max_pixels=max_pixels,
                                  progress=progress, on_failure=failed if go_on else None))
    table = api.to_frame(rows, classifier.classes)
    analysed = table["file"].nunique()
    if analysed == 0:
        raise FerlabError(f"none of the {len(failures)} file(s) could be analysed (the 'skipped' lines above); "
                          f"nothing was written")
    summary = api.summarize_files(table, classifier.classes)
    timelines = api.video_timelines(table, inputs, classifier.classes)
    if out is None:
        typer.echo(api.table_text(table, ".csv"), nl=False)
        print_predict_summary(console, summary, classifier.classes, failed=len(failures))
        if timelines:
            print_timeline_summary(console, timeline_summary(timelines), several=len(timelines) > 1)
            console.print("give --out results.csv to also get each video's timeline plot beside it")
    else:
        api.write_table(table, out)
        print_predict_summary(out_console, summary, classifier.classes, failed=len(failures))
        faces = int((table["label"] != "").sum())
        console.print(f"wrote {out}: {faces} face row(s), {len(table) - faces} row(s) without a face")
        if timelines:
            print_timeline_summary(out_console, timeline_summary(timelines), several=len(timelines) > 1)
            for path in write_timelines(timelines, pngs, summary_csv):
                console.print(f"wrote {path}")
    if failures:
        where = "on stdout" if out is None else f"in {out}"
        raise FerlabError(f"{len(failures)} of {len(failures) + analysed} file(s) could not be analysed (the "
                          f"'skipped' lines above); the other {analysed} file(s)' results are {where}; --strict "
                          f"stops at the first")


def skipped(reason: str) -> None:
    """A bad file, as one line on stderr (never wrapped, no markup: paths may hold brackets)."""
    console.print(f"skipped {reason}", markup=False, highlight=False, soft_wrap=True)
