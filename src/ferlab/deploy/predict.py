"""Batch prediction over images, folders and video files: one row per detected face.

``predict_paths(paths, pipeline)`` walks the inputs (folders recursively, by extension;
:func:`ferlab.deploy.media.collect_media`), reads every image and every ``every``-th frame of every video,
detects faces and crops them (:class:`ferlab.deploy.pipeline.FacePipeline`), and classifies the crops in
batches of ``batch_size`` across frames and files. It returns a
:class:`pandas.DataFrame` with one row per face::

    file, frame, time_s, face, x, y, w, h, score, angle, p_<class>..., label, confidence

``angle`` is the in-plane rotation (degrees) at which the detector found the face upright (the Haar
detector's fallback for tilted heads); the crop was turned by it. A frame or image in which no face was found still gets one row, with ``face`` empty and ``label`` empty, so
misses are counted (see :func:`summarize_files`). ``frame`` is 0 and ``time_s`` empty for a still image.
:func:`iter_rows` yields the same rows lazily, in input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from ferlab.deploy.media import DEFAULT_MAX_PIXELS, MediaFile, collect_media, iter_frames
from ferlab.deploy.pipeline import FacePipeline, Located
from ferlab.errors import FerlabError

OUT_SUFFIXES = (".csv", ".jsonl")
INT_COLUMNS = ("face", "x", "y", "w", "h")

Progress = Callable[[int, int], None]  # (frames done, frames total)


def probability_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def columns(classes: list[str]) -> list[str]:
    return ["file", "frame", "time_s", "face", "x", "y", "w", "h", "score", "angle", *probability_columns(classes),
            "label", "confidence"]


def iter_rows(inputs: list[MediaFile], pipeline: FacePipeline, *, every: int = 1, batch_size: int = 64,
              max_pixels: int = DEFAULT_MAX_PIXELS, progress: Progress | None = None) -> Iterator[dict]:
    """Rows (dicts with :func:`columns` keys) in input order; crops are classified ``batch_size`` at a time."""
    if every < 1:
        raise FerlabError(f"--every: must be at least 1, got {every}")
    if batch_size < 1:
        raise FerlabError(f"--batch-size: must be at least 1, got {batch_size}")
    p_cols = probability_columns(pipeline.classes)
    pending: list[tuple[dict, Located]] = []  # (row base, located frame), in input order
    n_crops = 0

    def flush() -> Iterator[dict]:
        nonlocal pending, n_crops
        for (base, _), result in zip(pending, pipeline.classify([located for _, located in pending])):
            if not result.faces:
                yield {**base, "label": ""}
            for i, face in enumerate(result.faces):
                box = face.face
                yield {**base, "face": i, "x": box.x, "y": box.y, "w": box.w, "h": box.h,
                       "score": round(float(box.score), 4), "angle": float(box.angle),
                       **{c: float(v) for c, v in zip(p_cols, face.probabilities)},
                       "label": face.label, "confidence": face.confidence}
        pending, n_crops = [], 0

    total = sum(m.frames for m in inputs)
    done = 0
    for media in inputs:
        for index, seconds, frame in iter_frames(media, every, max_pixels):
            located = pipeline.locate(frame)
            pending.append(({"file": str(media.path), "frame": index, "time_s": seconds}, located))
            n_crops += len(located.faces)
            done += 1
            if progress:
                total = max(total, done)
                progress(done, total)
            if n_crops >= batch_size:
                yield from flush()
    yield from flush()


def predict_paths(paths: Iterable[str | os.PathLike], pipeline: FacePipeline, *, every: int = 1,
                  batch_size: int = 64, max_pixels: int = DEFAULT_MAX_PIXELS,
                  progress: Progress | None = None) -> pd.DataFrame:
    """One row per face (and per faceless frame/image) over images, folders and videos; see the module doc."""
    inputs = collect_media(paths, every, max_pixels)
    rows = iter_rows(inputs, pipeline, every=every, batch_size=batch_size, max_pixels=max_pixels, progress=progress)
    return to_frame(list(rows), pipeline.classes)


def to_frame(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=columns(classes))
    for col in INT_COLUMNS:  # nullable integers: a faceless row leaves them empty, the others stay 12 not 12.0
        table[col] = table[col].astype("Int64")
    table["frame"] = table["frame"].astype("int64")
    table["label"] = table["label"].fillna("").astype(str)
    return table


def summarize_files(table: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per file: frames analysed, frames without a face, faces, and each emotion's share of the faces."""
    out = []
    for name, rows in table.groupby("file", sort=False):
        faces = rows[rows["label"] != ""]
        frames = rows["frame"].nunique()
        no_face = frames - faces["frame"].nunique()
        counts = faces["label"].value_counts()
        shares = {c: (counts.get(c, 0) / len(faces) if len(faces) else 0.0) for c in classes}
        top = max(classes, key=lambda c: shares[c]) if len(faces) else ""
        out.append({"file": name, "frames": frames, "frames_without_face": no_face, "faces": len(faces),
                    **{f"share_{c}": s for c, s in shares.items()}, "top": top})
    return pd.DataFrame(out, columns=["file", "frames", "frames_without_face", "faces",
                                      *[f"share_{c}" for c in classes], "top"])


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
