"""Batch prediction over images, folders and video files: one row per detected face.

``predict_paths(paths, pipeline)`` walks the inputs (folders recursively, by extension;
:func:`ferlab.deploy.media.collect_media`), reads every image and every ``every``-th frame of every video,
detects faces and crops them (:class:`ferlab.deploy.pipeline.FacePipeline`), and classifies the crops in
batches of ``batch_size`` across frames and files. It returns a
:class:`pandas.DataFrame` with one row per face::

    file, frame, time_s, face, track, x, y, w, h, score, angle, p_<class>..., label, confidence

``angle`` is the in-plane rotation (degrees) at which the detector found the face upright (the Haar
detector's fallback for tilted heads); the crop was turned by it. A frame or image in which no face was found still gets one row, with ``face`` empty and ``label`` empty, so
misses are counted (see :func:`summarize_files`). ``frame`` is 0 and ``time_s`` empty for a still image.
``track`` follows a face from frame to frame in a video (:class:`ferlab.deploy.tracking.FaceTracker`, as
``ferlab live``); it is empty for a still image. :func:`video_timelines` turns a video's rows into its
emotion timeline (:mod:`ferlab.deploy.timeline`). :func:`iter_rows` yields the same rows lazily, in
input order.

A file that cannot be read or decoded stops the run (the default, ``--strict``), or, given
``on_failure``, is passed to it (its path and a one-line reason) and skipped with no row of it kept, while
the other files go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from ferlab.deploy.media import DEFAULT_MAX_PIXELS, MediaFile, collect_media, iter_frames
from ferlab.deploy.pipeline import FacePipeline, Located
from ferlab.deploy.timeline import Timeline, dominant
from ferlab.deploy.tracking import FaceTracker
from ferlab.errors import FerlabError, first_line

OUT_SUFFIXES = (".csv", ".jsonl")
INT_COLUMNS = ("face", "track", "x", "y", "w", "h")

Progress = Callable[[int, int], None]  # (frames done, frames total)
OnFailure = Callable[[Path, str], None]  # (file, one-line reason naming it)


def probability_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def columns(classes: list[str]) -> list[str]:
    return ["file", "frame", "time_s", "face", "track", "x", "y", "w", "h", "score", "angle",
            *probability_columns(classes), "label", "confidence"]


def iter_rows(inputs: list[MediaFile], pipeline: FacePipeline, *, every: int = 1, batch_size: int = 64,
              max_pixels: int = DEFAULT_MAX_PIXELS, progress: Progress | None = None,
              on_failure: OnFailure | None = None) -> Iterator[dict]:
    """Rows (dicts with :func:`columns` keys) in input order; crops are classified ``batch_size`` at a time.

    A file's rows are yielded once the whole file has been read, so a file that fails part-way (given
    ``on_failure``) leaves no row behind; without ``on_failure`` its error is raised.
    """
    if every < 1:
        raise FerlabError(f"--every: must be at least 1, got {every}")
    if batch_size < 1:
        raise FerlabError(f"--batch-size: must be at least 1, got {batch_size}")
    p_cols = probability_columns(pipeline.classes)
    pending: list[tuple[int, dict, Located, list[int | None]]] = []  # (file index, row base, frame, track ids)
    ready: list[tuple[int, dict]] = []  # classified rows, held until their file is complete
    n_crops = 0

    def flush() -> None:
        nonlocal pending, n_crops
        for (index, base, _, tracks), result in zip(pending, pipeline.classify([item[2] for item in pending])):
            if not result.faces:
                ready.append((index, {**base, "label": ""}))
            for i, (face, track) in enumerate(zip(result.faces, tracks)):
                box = face.face
                ready.append((index, {**base, "face": i, "track": track, "x": box.x, "y": box.y, "w": box.w,
                                      "h": box.h, "score": round(float(box.score), 4), "angle": float(box.angle),
                                      **{c: float(v) for c, v in zip(p_cols, face.probabilities)},
                                      "label": face.label, "confidence": face.confidence}))
        pending, n_crops = [], 0

    total = sum(m.frames for m in inputs)
    done = 0
    for index, media in enumerate(inputs):
        tracker = FaceTracker() if media.kind == "video" else None
        frames = iter_frames(media, every, max_pixels)
        while True:
            try:  # reading, decoding and detecting are this file's; classifying (below) is the model's
                item = next(frames, None)
                if item is None:
                    break
                frame_index, seconds, frame = item
                located = pipeline.locate(frame)
                tracks = tracker.update([f.box for f in located.faces]) if tracker else [None] * len(located.faces)
            except Exception as exc:  # noqa: BLE001  (one file's problem: the caller decides whether the run goes on)
                reason = str(exc) if isinstance(exc, FerlabError) else (
                    f"{media.path}: cannot be analysed ({type(exc).__name__}: {first_line(exc)}); check the file "
                    f"or convert it")
                if on_failure is None:
                    if isinstance(exc, FerlabError):
                        raise
                    raise FerlabError(reason) from exc
                pending = [p for p in pending if p[0] != index]
                n_crops = sum(len(p[2].faces) for p in pending)
                ready[:] = [r for r in ready if r[0] != index]
                done = sum(m.frames for m in inputs[:index + 1])  # the bar skips what is left of it
                on_failure(media.path, reason)
                break
            pending.append((index, {"file": str(media.path), "frame": frame_index, "time_s": seconds}, located,
                            tracks))
            n_crops += len(located.faces)
            done += 1
            if progress:
                total = max(total, done)
                progress(done, total)
            if n_crops >= batch_size:
                flush()
        frames.close()  # releases a video left part-read
        yield from (row for _, row in ready)  # every file with rows in ``ready`` is complete now
        ready.clear()
    flush()
    yield from (row for _, row in ready)


def predict_paths(paths: Iterable[str | os.PathLike], pipeline: FacePipeline, *, every: int = 1,
                  batch_size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS,
                  progress: Progress | None = None, on_failure: OnFailure | None = None) -> pd.DataFrame:
    """One row per face (and per faceless frame/image) over images, folders and videos; see the module doc.
    ``on_failure(path, reason)``: skip bad files and go on (default: the first one raises)."""
    on_error = (lambda path, exc: on_failure(path, str(exc))) if on_failure else None
    inputs = collect_media(paths, every, max_pixels, on_error=on_error)
    rows = iter_rows(inputs, pipeline, every=every, batch_size=batch_size, max_pixels=max_pixels, progress=progress,
                     on_failure=on_failure)
    return to_frame(list(rows), pipeline.classes)


def to_frame(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=columns(classes))
    for col in INT_COLUMNS:  # nullable integers: a faceless row leaves them empty, the others stay 12 not 12.0
        table[col] = table[col].astype("Int64")
    table["frame"] = table["frame"].astype("int64")
    table["label"] = table["label"].fillna("").astype(str)
    return table


def summarize_files(table: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per file: frames analysed, frames without a face, faces, each emotion's share of the faces (the
    fraction of faces labelled with it: a count, not a mean probability) and the most frequent label (a
    tie names every tied label: "happy = sad")."""
    out = []
    for name, rows in table.groupby("file", sort=False):
        faces = rows[rows["label"] != ""]
        frames = rows["frame"].nunique()
        no_face = frames - faces["frame"].nunique()
        counts = faces["label"].value_counts()
        shares = {c: (counts.get(c, 0) / len(faces) if len(faces) else 0.0) for c in classes}
        out.append({"file": name, "frames": frames, "frames_without_face": no_face, "faces": len(faces),
                    **{f"share_{c}": s for c, s in shares.items()},
                    "most_frequent": dominant({k: int(v) for k, v in counts.items()})})
    return pd.DataFrame(out, columns=["file", "frames", "frames_without_face", "faces",
                                      *[f"share_{c}" for c in classes], "most_frequent"])


def video_timelines(table: pd.DataFrame, inputs: Iterable[MediaFile], classes: list[str]) -> list[Timeline]:
    """The emotion timeline (:class:`ferlab.deploy.timeline.Timeline`) of each video with rows in ``table``."""
    by_file = dict(tuple(table.groupby("file", sort=False)))
    return [Timeline.from_rows(by_file[str(m.path)], classes, str(m.path))
            for m in inputs if m.kind == "video" and str(m.path) in by_file]


def check_out(out: Path, overwrite: bool) -> None:
    """Fail before any work on an unknown --out extension or an existing file without --overwrite."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise FerlabError(f"--out {out}: unknown extension {out.suffix!r}; use .csv or .jsonl")
    if out.is_dir():
        raise FerlabError(f"--out {out}: is a folder; give a .csv or .jsonl file path")
    if out.exists() and not overwrite:
        raise FerlabError(f"--out {out}: already exists; choose another path or pass --overwrite")


def table_text(table: pd.DataFrame, fmt: str) -> str:
    """The table as CSV or JSON lines (empty cells as empty / null)."""
    if fmt == ".csv":
        return table.to_csv(index=False, float_format="%.6g")
    return table.to_json(orient="records", lines=True, double_precision=6) + ("\n" if len(table) else "")


def write_table(table: pd.DataFrame, out: Path) -> None:
    from ferlab.io import atomic_write_text

    atomic_write_text(out, table_text(table, out.suffix.lower()))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A results file written by ``ferlab predict`` (CSV or JSON lines) back as a DataFrame."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        table = pd.read_json(path, lines=True)
    else:
        table = pd.read_csv(path)
    table["label"] = table["label"].fillna("").astype(str)
    return table
