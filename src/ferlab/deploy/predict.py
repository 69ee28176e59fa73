"""Batch prediction over images, folders and video files: one row per detected face.

``predict_paths(paths, pipeline)`` walks the inputs (folders recursively, by extension;
:func:`ferlab.deploy.media.collect_media`), reads every image and every ``every``-th frame of every video,
detects faces and crops them (:class:`ferlab.deploy.pipeline.FacePipeline`), and classifies the crops in
batches of ``batch_size`` across frames and files. It returns a
:class:`pandas.DataFrame` with one row per face::

    file, frame, time_s, face, track, x, y, w, h, score, angle, p_<class>..., label, confidence

``angle`` is the in-plane rotation (degrees) that turns the face upright (BlazeFace: the head's roll from
its eyes; Haar: the turn at which its fallback for tilted heads found it); the crop was turned by it. A frame or image in which no face was found still gets one row, with ``face`` empty and ``label`` empty, so
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
    rows = _Batches(pipeline, batch_size)
    frames = _FrameCount(inputs, progress)
    for index, media in enumerate(inputs):
        _analyse_file(index, media, pipeline, rows, frames, every, max_pixels, on_failure)
        yield from rows.take()  # every file with rows held is complete now
    rows.flush()
    yield from rows.take()


class _Batches:
    """Frames waiting to be classified (batched across frames and files) and the rows classified from them,
    held until their file is complete, so a file that fails part-way can take all of its rows back."""

    def __init__(self, pipeline: FacePipeline, batch_size: int):
        self.pipeline, self.batch_size = pipeline, batch_size
        self.p_cols = probability_columns(pipeline.classes)
        self.pending: list[tuple[int, dict, Located, list[int | None]]] = []  # (file index, row base, frame, tracks)
        self.ready: list[tuple[int, dict]] = []  # (file index, classified row)
        self.crops = 0

    def add(self, index: int, base: dict, located: Located, tracks: list[int | None]) -> None:
        self.pending.append((index, base, located, tracks))
        self.crops += len(located.faces)

    @property
    def full(self) -> bool:
        return self.crops >= self.batch_size

    def flush(self) -> None:
        results = self.pipeline.classify([located for _, _, located, _ in self.pending])
        for (index, base, _, tracks), result in zip(self.pending, results):
            self.ready += [(index, row) for row in self._rows(base, result, tracks)]
        self.pending, self.crops = [], 0

    def _rows(self, base: dict, result, tracks: list[int | None]) -> list[dict]:
        """One classified frame's rows: one per face, or one with an empty label when it has none."""
        if not result.faces:
            return [{**base, "label": ""}]
        return [{**base, "face": i, "track": track, "x": face.face.x, "y": face.face.y, "w": face.face.w,
                 "h": face.face.h, "score": round(float(face.face.score), 4), "angle": float(face.face.angle),
                 **{c: float(v) for c, v in zip(self.p_cols, face.probabilities)},
                 "label": face.label, "confidence": face.confidence}
                for i, (face, track) in enumerate(zip(result.faces, tracks))]

    def drop(self, index: int) -> None:
        """Forget file ``index``: its frames not yet classified and its rows."""
        self.pending = [p for p in self.pending if p[0] != index]
        self.crops = sum(len(p[2].faces) for p in self.pending)
        self.ready[:] = [r for r in self.ready if r[0] != index]

    def take(self) -> list[dict]:
        rows = [row for _, row in self.ready]
        self.ready.clear()
        return rows


class _FrameCount:
    """Frames read so far against the inputs' total, for ``progress``."""

    def __init__(self, inputs: list[MediaFile], progress: Progress | None):
        self.inputs, self.progress = inputs, progress
        self.total, self.done = sum(m.frames for m in inputs), 0

    def step(self) -> None:
        self.done += 1
        if self.progress:
            self.total = max(self.total, self.done)
            self.progress(self.done, self.total)

    def skip_rest_of(self, index: int) -> None:
        self.done = sum(m.frames for m in self.inputs[:index + 1])  # the bar skips what is left of the file


def _located_frames(media: MediaFile, pipeline: FacePipeline, every: int, max_pixels: int
                    ) -> Iterator[tuple[int, float | None, Located, list[int | None]]]:
    """(frame index, seconds, the frame's faces located, their track ids) of one file: reading, decoding and
    detecting, which are this file's problems (classifying is the model's)."""
    tracker = FaceTracker() if media.kind == "video" else None
    locator = pipeline.for_video() if media.kind == "video" else pipeline  # a video: the stream's search
    frames = iter_frames(media, every, max_pixels)
    try:
        for frame_index, seconds, frame in frames:
            located = locator.locate(frame)
            tracks = tracker.update([f.box for f in located.faces]) if tracker else [None] * len(located.faces)
            yield frame_index, seconds, located, tracks
    finally:
        frames.close()  # releases a video left part-read


def _analyse_file(index: int, media: MediaFile, pipeline: FacePipeline, rows: _Batches, frames: _FrameCount,
                  every: int, max_pixels: int, on_failure: OnFailure | None) -> None:
    """Locate the faces of every ``every``-th frame of one file into ``rows``, classifying each full batch; a
    file that cannot be read raises, or, given ``on_failure``, is reported to it and leaves nothing behind."""
    located = _located_frames(media, pipeline, every, max_pixels)
    try:
        while True:
            try:
                item = next(located, None)
            except Exception as exc:  # one file's problem: the caller decides whether the run goes on
                reason = str(exc) if isinstance(exc, FerlabError) else (
                    f"{media.path}: cannot be analysed ({type(exc).__name__}: {first_line(exc)}); check the file "
                    f"or convert it")
                if on_failure is None:
                    if isinstance(exc, FerlabError):
                        raise
                    raise FerlabError(reason) from exc
                rows.drop(index)
                frames.skip_rest_of(index)
                on_failure(media.path, reason)
                return
            if item is None:
                return
            frame_index, seconds, faces, tracks = item
            rows.add(index, {"file": str(media.path), "frame": frame_index, "time_s": seconds}, faces, tracks)
            frames.step()
            if rows.full:
                rows.flush()
    finally:
        located.close()


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
