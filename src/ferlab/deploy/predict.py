"""Batch prediction over images, folders and video files: one row per detected face.

``predict_paths(paths, classifier, detector)`` walks the inputs (folders recursively, by extension), reads
every image and every ``every``-th frame of every video (``cv2.VideoCapture``), detects faces, crops them
FER-style and classifies the crops in batches of ``batch_size`` across frames and files. It returns a
:class:`pandas.DataFrame` with one row per face::

    file, frame, time_s, face, x, y, w, h, score, angle, p_<class>..., label, confidence

``angle`` is the in-plane rotation (degrees) at which the detector found the face upright (the Haar
detector's fallback for tilted heads); the crop was turned by it. A frame or image in which no face was found still gets one row, with ``face`` empty and ``label`` empty, so
misses are counted (see :func:`summarize`). ``frame`` is 0 and ``time_s`` empty for a still image.
:func:`iter_rows` yields the same rows lazily, in input order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab.deploy.detect import DEFAULT_MARGIN, Face, FaceDetector, crop_face
from ferlab.deploy.runtime import FaceClassifier
from ferlab.errors import FerlabError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
OUT_SUFFIXES = (".csv", ".jsonl")
INT_COLUMNS = ("face", "x", "y", "w", "h")

Progress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass(frozen=True)
class MediaFile:
    path: Path
    kind: str  # "image" or "video"
    frames: int  # frames to analyse (1 for an image; an estimate for a video: containers may miscount)


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def collect_inputs(paths: Iterable[str | os.PathLike], every: int = 1) -> list[MediaFile]:
    """Files to analyse, in the order given, folders expanded recursively (sorted; hidden entries skipped).

    A missing path, a file that is neither an image nor a video by extension, an image whose header no
    decoder recognises, a folder without any, and a video OpenCV cannot open are errors (one line naming
    the path).
    """
    found: list[MediaFile] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FerlabError(f"{path}: no such file or folder; give images, videos or folders of them")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and media_kind(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise FerlabError(f"{path}: no image or video files inside (looked for "
                                  f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
        else:
            if media_kind(path) is None:
                raise FerlabError(f"{path}: not an image or video file by its extension; give "
                                  f"{', '.join(sorted(IMAGE_SUFFIXES))} images or "
                                  f"{', '.join(sorted(VIDEO_SUFFIXES))} videos")
            files = [path]
        for f in files:
            kind = media_kind(f)
            if kind == "image":
                check_image(f)
                frames = 1
            else:
                frames = math.ceil(max(video_frame_count(f), 1) / every)
            found.append(MediaFile(f, kind, frames))
    return found


def check_image(path: Path) -> None:
    """Fail early (before the model loads) on a file whose header no image decoder recognises."""
    import cv2

    if cv2.haveImageReader(str(path)):
        return
    try:
        from PIL import Image

        with Image.open(path):
            return
    except Exception:  # noqa: BLE001  (any decoder failure means the same thing to the user)
        raise FerlabError(f"{path}: not a readable image (empty, corrupt or another kind of file); "
                          f"remove it or convert it to PNG/JPEG") from None


def video_frame_count(path: Path) -> int:
    """The container's frame count (0 when it does not say); an unopenable video is an error."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise FerlabError(f"{path}: OpenCV cannot open this video (unknown codec or not a video); "
                              f"convert it, e.g. ffmpeg -i {path.name} out.mp4")
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def read_image(path: Path) -> np.ndarray:
    """A BGR (or grayscale) uint8 image; an unreadable file is an error naming it."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:  # formats OpenCV may not decode (GIF on some builds): try Pillow
        try:
            from PIL import Image

            with Image.open(path) as im:
                image = cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)
        except Exception:  # noqa: BLE001  (any decoder failure means the same thing to the user)
            raise FerlabError(f"{path}: cannot read this image (corrupt, empty or not an image); "
                              f"remove it or convert it to PNG/JPEG") from None
    return image


def iter_frames(media: MediaFile, every: int = 1) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """(frame index, time in seconds or None for an image, BGR frame) for every ``every``-th frame."""
    if media.kind == "image":
        yield 0, None, read_image(media.path)
        return
    import cv2

    cap = cv2.VideoCapture(str(media.path))
    if not cap.isOpened():
        raise FerlabError(f"{media.path}: OpenCV cannot open this video; convert it, e.g. to mp4")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        index = 0
        while True:
            if index % every:
                if not cap.grab():
                    break
            else:
                ok, frame = cap.read()
                if not ok:
                    break
                seconds = index / fps if fps > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield index, round(float(seconds), 4), frame
            index += 1
        if index == 0:
            raise FerlabError(f"{media.path}: no frame could be decoded; the video is empty or its codec is "
                              f"not supported by OpenCV (convert it, e.g. to mp4)")
    finally:
        cap.release()


def probability_columns(classes: list[str]) -> list[str]:
    return [f"p_{c}" for c in classes]


def columns(classes: list[str]) -> list[str]:
    return ["file", "frame", "time_s", "face", "x", "y", "w", "h", "score", "angle", *probability_columns(classes),
            "label", "confidence"]


def iter_rows(inputs: list[MediaFile], classifier: FaceClassifier, detector: FaceDetector, *, all_faces: bool = True,
              every: int = 1, batch_size: int = 64, margin: float = DEFAULT_MARGIN,
              progress: Progress | None = None) -> Iterator[dict]:
    """Rows (dicts with :func:`columns` keys) in input order; crops are classified ``batch_size`` at a time."""
    if every < 1:
        raise FerlabError(f"--every: must be at least 1, got {every}")
    if batch_size < 1:
        raise FerlabError(f"--batch-size: must be at least 1, got {batch_size}")
    classes = classifier.classes
    p_cols = probability_columns(classes)
    pending: list[tuple[dict, np.ndarray | None]] = []  # rows in order; faceless rows carry no crop
    n_crops = 0

    def flush() -> Iterator[dict]:
        nonlocal pending, n_crops
        crops = [c for _, c in pending if c is not None]
        probs = classifier.predict(np.stack(crops)) if crops else np.zeros((0, len(classes)), np.float32)
        k = 0
        for row, crop in pending:
            if crop is not None:
                p = probs[k]
                k += 1
                row.update({c: float(v) for c, v in zip(p_cols, p)})
                row["label"], row["confidence"] = classes[int(np.argmax(p))], float(np.max(p))
            yield row
        pending, n_crops = [], 0

    total = sum(m.frames for m in inputs)
    done = 0
    for media in inputs:
        name = str(media.path)
        for index, seconds, frame in iter_frames(media, every):
            faces: list[Face] = detector.detect(frame) if all_faces else detector.largest(frame)
            base = {"file": name, "frame": index, "time_s": seconds}
            if not faces:
                pending.append(({**base, "label": ""}, None))
            for i, face in enumerate(faces):
                row = {**base, "face": i, "x": face.x, "y": face.y, "w": face.w, "h": face.h,
                       "score": round(float(face.score), 4), "angle": float(face.angle)}
                pending.append((row, crop_face(frame, face, margin)))
                n_crops += 1
            done += 1
            if progress:
                total = max(total, done)
                progress(done, total)
            if n_crops >= batch_size:
                yield from flush()
    yield from flush()


def predict_paths(paths: Iterable[str | os.PathLike], classifier: FaceClassifier, detector: FaceDetector, *,
                  all_faces: bool = True, every: int = 1, batch_size: int = 64, margin: float = DEFAULT_MARGIN,
                  progress: Progress | None = None) -> pd.DataFrame:
    """One row per face (and per faceless frame/image) over images, folders and videos; see the module doc."""
    inputs = collect_inputs(paths, every)
    rows = iter_rows(inputs, classifier, detector, all_faces=all_faces, every=every, batch_size=batch_size,
                     margin=margin, progress=progress)
    return to_frame(list(rows), classifier.classes)


def to_frame(rows: list[dict], classes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=columns(classes))
    for col in INT_COLUMNS:  # nullable integers: a faceless row leaves them empty, the others stay 12 not 12.0
        table[col] = table[col].astype("Int64")
    table["frame"] = table["frame"].astype("int64")
    table["label"] = table["label"].fillna("").astype(str)
    return table


def summarize(table: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
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
