"""The data source loaders (registered in :mod:`ferlab.data.source_kinds`). Each yields a FaceSet (48x48 uint8
grayscale + provenance):

- image folders: ``<root>/<class>/*`` or ``<root>/<split>/<class>/*`` (the Kaggle FER2013 layout is the
  latter, with PublicTest/PrivateTest told apart by file name); any size or colour mode is converted to
  48x48 grayscale and the conversion recorded;
- ``fer2013.csv`` (``emotion,pixels,Usage``) and its ``icml_face_data.csv`` variant;
- ``synthetic``: the embedded procedurally drawn set (see ferlab.data.synthetic).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ferlab.data.faceset import FER2013_CLASSES, FaceSet
from ferlab.data.labels import canonical_label
from ferlab.errors import FerlabError
from ferlab.face import FACE_SIZE

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")

Progress = Callable[[int, int], None]  # (done, total)


# ----------------------------------------------------------------------------------------------- folders
def _list_class_dirs(root: Path) -> list[tuple[str, Path]]:
    """(split, class_dir) pairs; split is "" for a flat <root>/<class>/ layout."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise FerlabError(f"{root}: no class folders; expected <root>/<class>/*.jpg or <root>/{{train,test}}/<class>/*.jpg")
    if all(p.name.lower() in SPLIT_FOLDERS for p in subdirs):
        pairs = []
        for split_dir in subdirs:
            class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not class_dirs:
                raise FerlabError(f"{split_dir}: no class folders inside; expected {split_dir}/<class>/*.jpg")
            pairs += [(SPLIT_FOLDERS[split_dir.name.lower()], d) for d in class_dirs]
        return pairs
    return [("", d) for d in subdirs]


def _usage_from_name(name: str, split: str) -> str:
    """Kaggle FER2013 file names carry the original usage (Training_*, PublicTest_*, PrivateTest_*)."""
    prefix = name.split("_", 1)[0]
    return prefix if prefix in FER2013_USAGES else split


def _decode(path: Path) -> tuple[np.ndarray, str]:
    """Decode one image to 48x48 uint8 grayscale; return it and a description of any conversion."""
    with Image.open(path) as im:
        im.load()
        mode, (w, h) = im.mode, im.size
        steps = []
        if getattr(im, "n_frames", 1) > 1:
            steps.append("first frame")
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
            # Composite on white so transparent regions do not turn black.
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im.convert("RGBA"))
            steps.append("alpha on white")
        if im.mode != "L":
            im = im.convert("L")
            steps.append(f"{mode}->L")
        arr = np.asarray(im)
    if arr.dtype != np.uint8:  # 16-bit or float TIFF/PNG
        arr = np.clip(arr.astype(np.float64) / max(float(arr.max()), 1.0) * 255.0, 0, 255).astype(np.uint8)
        steps.append("rescaled to 8 bit")
    if (h, w) != (FACE_SIZE, FACE_SIZE):
        import cv2

        side = min(h, w)
        if h != w:  # a centre square crop keeps the face's aspect ratio
            top, left = (h - side) // 2, (w - side) // 2
            arr = arr[top:top + side, left:left + side]
            steps.append(f"centre crop {w}x{h}->{side}x{side}")
        interp = cv2.INTER_AREA if side > FACE_SIZE else cv2.INTER_LINEAR
        arr = cv2.resize(arr, (FACE_SIZE, FACE_SIZE), interpolation=interp)
        steps.append(f"resize {side}->{FACE_SIZE}")
    return np.ascontiguousarray(arr, dtype=np.uint8), "; ".join(steps)


def load_image_folder(root: str | os.PathLike, *, skip_bad: bool = False, progress: Progress | None = None) -> FaceSet:
    """Load ``<root>/<class>/*`` or ``<root>/<split>/<class>/*`` with class-name aliases."""
    root = Path(root)
    decoded, skipped = _decode_files(root, _folder_files(root), skip_bad, progress)
    if not decoded:
        raise FerlabError(f"{root}: no readable images")
    images = np.stack([face for _, _, (face, _) in decoded])
    provenance = pd.DataFrame({
        "source": [rel for rel, _, _ in decoded],
        "origin_split": [_usage_from_name(path.name, split) for _, (path, split, _), _ in decoded],
        "origin_label": [label for _, (_, _, label), _ in decoded],
        "conversion": [conversion for _, _, (_, conversion) in decoded],
    })
    return FaceSet(images, provenance, name=f"folder:{root.name}", notes={"skipped": skipped, "root": str(root)})


def _folder_files(root: Path) -> list[tuple[Path, str, str]]:
    """(path, split, canonical label) of every image under ``root``'s class folders, in a stable order."""
    files: list[tuple[Path, str, str]] = []
    for split, class_dir in _list_class_dirs(root):
        label = canonical_label(class_dir.name)
        if label is None:
            raise FerlabError(
                f"{class_dir}: unknown class folder {class_dir.name!r}; rename it to one of angry, disgust, fear, "
                f"happy, sad, surprise, neutral, contempt (or a common alias such as 'anger', 'sadness')"
            )
        images = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        if not images:
            raise FerlabError(f"{class_dir}: class folder is empty; add images or remove the folder")
        files += [(p, split, label) for p in images]
    return files


def _decode_or_error(item: tuple[Path, str, str]) -> tuple[np.ndarray, str] | Exception:
    """One image decoded, or why it cannot be (returned, not raised: the caller decides whether to skip it)."""
    try:
        return _decode(item[0])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return exc


def _decode_files(root: Path, files: list[tuple[Path, str, str]], skip_bad: bool, progress: Progress | None
                  ) -> tuple[list[tuple[str, tuple[Path, str, str], tuple[np.ndarray, str]]], list[str]]:
    """(relative path, file entry, (face, conversion)) of each readable image, in ``files``' order, and the
    relative paths skipped as unreadable (``skip_bad``; otherwise the first one is an error)."""
    decoded, skipped = [], []
    # Decoding is I/O- and C-bound (Pillow releases the GIL), so a few threads help on cold caches.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for i, (item, result) in enumerate(zip(files, pool.map(_decode_or_error, files, chunksize=64))):
            if progress and (i % 512 == 0 or i == len(files) - 1):
                progress(i + 1, len(files))
            rel = item[0].relative_to(root).as_posix()
            if isinstance(result, Exception):
                if not skip_bad:
                    raise _unreadable(item[0], result)
                skipped.append(rel)
                continue
            decoded.append((rel, item, result))
    return decoded, skipped


def _unreadable(path: Path, exc: Exception) -> FerlabError:
    why = ("not an image, or a format Pillow cannot read" if isinstance(exc, UnidentifiedImageError)
           else f"corrupt or truncated: {type(exc).__name__}")
    return FerlabError(f"{path}: unreadable image ({why}); remove it or pass --skip-bad")


# --------------------------------------------------------------------------------------------------- CSV
def load_fer2013_csv(path: str | os.PathLike) -> FaceSet:
    """Load ``fer2013.csv`` (emotion,pixels,Usage) or ``icml_face_data.csv`` (same, names with a leading space)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FerlabError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in df.columns]
    if missing:
        raise FerlabError(
            f"{path}: missing column(s) {', '.join(missing)}; a FER2013 CSV has columns emotion,pixels,Usage "
            f"(found: {', '.join(df.columns) or 'none'})"
        )
    if df.empty:
        raise FerlabError(f"{path}: no rows")
    images = np.empty((len(df), FACE_SIZE, FACE_SIZE), np.uint8)
    n_pixels = FACE_SIZE * FACE_SIZE
    for row, text in enumerate(df["pixels"]):
        try:
            values = np.array(text.split(), dtype=np.int64)
        except ValueError:
            values = None
        if values is None or values.size != n_pixels or values.min(initial=0) < 0 or values.max(initial=0) > 255:
            what = "non-numeric" if values is None else f"{values.size} values" if values.size != n_pixels else "values outside 0-255"
            raise FerlabError(
                f"{path}: row {row + 2}: malformed 'pixels' ({what}); expected {n_pixels} space-separated integers 0-255"
            )
        images[row] = values.reshape(FACE_SIZE, FACE_SIZE)
    emotion = pd.to_numeric(df["emotion"].str.strip(), errors="coerce")
    bad = emotion.isna() | ~emotion.isin(range(len(FER2013_CLASSES)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise FerlabError(f"{path}: row {row + 2}: 'emotion' must be an integer 0-6 (got {df['emotion'].iloc[row]!r})")
    usage = df["Usage"].str.strip()
    bad_usage = ~usage.isin(FER2013_USAGES)
    if bad_usage.any():
        row = int(np.flatnonzero(bad_usage.to_numpy())[0])
        raise FerlabError(f"{path}: row {row + 2}: 'Usage' must be one of {', '.join(FER2013_USAGES)} (got {usage.iloc[row]!r})")
    provenance = pd.DataFrame({
        "source": [f"csv:{i}" for i in range(len(df))],
        "origin_split": usage.to_numpy(),
        "origin_label": [FER2013_CLASSES[int(e)] for e in emotion],
        "fer2013_row": np.arange(len(df)),
    })
    return FaceSet(images, provenance, name=f"csv:{path.name}", notes={"path": str(path)})

