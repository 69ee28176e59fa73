"""FER+ labels (Microsoft FERPlus ``fer2013new.csv``): majority vote over ten annotators.

Joined by row order to the FER2013 CSV source, and through a path->row mapping file
(``fer2013_jpg_to_ferplus.csv``: path, fer2013_row, ..., the ten vote columns) to the Kaggle image-folder
source, whose file names carry no row number. Note that FERPlus's "Image name" column is *not* the row
index (it skips non-face rows), so the join always uses row position.

Majority vote as in FERPlus's own "majority" mode: the class with the most votes wins; a tie for the most
votes, or a win by "unknown" or "NF" (not a face), leaves the image without a label, and such images are
dropped and counted.

The ten vote counts also travel with every kept face (``votes_<column>`` columns of the prepared
manifest), so a trainer can fit the annotators' distribution instead of the majority
(:func:`vote_distribution`, FER+'s "probability" mode; evaluation stays on the majority label).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab.data.faceset import FaceSet
from ferlab.errors import FerlabError

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
VOTE_PREFIX = "votes_"  # manifest column of one vote count: votes_neutral, ..., votes_NF
VOTE_TO_LABEL = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                 "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}


def majority_vote(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (canonical names, "" if none) and reasons ("", "tie", "unknown", "not_face") per vote row."""
    votes = np.asarray(votes, dtype=np.int64)
    top = votes.max(axis=1, keepdims=True)
    n_top = (votes == top).sum(axis=1)
    winner = votes.argmax(axis=1)
    labels = np.array([VOTE_TO_LABEL.get(VOTE_COLUMNS[w], "") for w in winner], dtype=object)
    reasons = np.full(len(votes), "", dtype=object)
    reasons[winner == VOTE_COLUMNS.index("unknown")] = "unknown"
    reasons[winner == VOTE_COLUMNS.index("NF")] = "not_face"
    reasons[(n_top > 1) | (top[:, 0] == 0)] = "tie"
    labels[reasons != ""] = ""
    return labels, reasons


def _read_votes(path: Path, key_columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={c: str for c in key_columns}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FerlabError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in (*key_columns, *VOTE_COLUMNS) if c not in df.columns]
    if missing:
        raise FerlabError(f"{path}: missing FER+ column(s) {', '.join(missing)}; give fer2013new.csv or fer2013_jpg_to_ferplus.csv")
    return df


def attach_ferplus(faces: FaceSet, labels_path: str | os.PathLike) -> FaceSet:
    """Relabel ``faces`` with FER+ majority labels; images without one are dropped and counted in notes.

    ``labels_path`` is ``fer2013new.csv`` (for the CSV source: joined by row) or the image-folder mapping
    ``fer2013_jpg_to_ferplus.csv`` (joined by the file's path relative to the data root).
    """
    path = Path(labels_path)
    if not path.is_file():
        raise FerlabError(f"{path}: FER+ label file not found; pass --ferplus with fer2013new.csv or fer2013_jpg_to_ferplus.csv")
    header = pd.read_csv(path, nrows=0).columns.str.strip()
    prov = faces.provenance
    if "path" in header:  # image-folder mapping
        df = _read_votes(path, ("path",))
        df = df.set_index("path")
        missing_paths = ~prov["source"].isin(df.index)
        if missing_paths.all():
            raise FerlabError(f"{path}: none of the source's files are listed; is it the mapping for this data folder?")
        sub = df.reindex(prov["source"])
        matched = sub["fer2013_row"].astype(str).str.len().gt(0).to_numpy() & ~missing_paths.to_numpy()
        rows = pd.to_numeric(sub["fer2013_row"], errors="coerce").to_numpy()
        low_margin = pd.to_numeric(sub.get("low_margin", 0), errors="coerce").fillna(0).to_numpy().astype(bool)
    else:
        df = _read_votes(path, ("Usage",))
        if "fer2013_row" not in prov.columns:
            raise FerlabError(f"{path}: fer2013new.csv joins by CSV row; use it with a fer2013.csv source, or the path mapping for folders")
        # The join is by row position, so the CSV must keep fer2013.csv's original row order (the full
        # file, or a prefix of it); the Usage column of both files must then agree row for row.
        n_rows = int(prov["fer2013_row"].max()) + 1
        if n_rows > len(df):
            raise FerlabError(f"{path}: has {len(df)} rows but the FER2013 CSV has {n_rows}; they must match row for row")
        usage = df["Usage"].str.strip().to_numpy()[prov["fer2013_row"].to_numpy()]
        mismatch = np.flatnonzero(usage != prov["origin_split"].to_numpy())
        if len(mismatch):
            raise FerlabError(
                f"{path}: row {int(mismatch[0]) + 2}: Usage {usage[mismatch[0]]!r} differs from the FER2013 CSV's "
                f"{prov['origin_split'].iloc[mismatch[0]]!r}; the CSV must be in fer2013.csv's original row order"
            )
        rows = prov["fer2013_row"].to_numpy(dtype=float)
        sub = df.iloc[rows.astype(int)]
        matched = np.ones(len(prov), bool)
        low_margin = np.zeros(len(prov), bool)
    votes = sub[list(VOTE_COLUMNS)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy()
    labels, reasons = majority_vote(votes)
    reasons = np.where(matched, reasons, "unmatched")
    labels = np.where(matched, labels, "")
    keep = labels != ""
    kept = faces.subset(np.flatnonzero(keep))
    kept.provenance["fer2013_label"] = kept.provenance["origin_label"]
    kept.provenance["origin_label"] = labels[keep]
    kept.provenance["fer2013_row"] = rows[keep].astype(np.int64)
    kept.provenance["ferplus_low_margin"] = low_margin[keep].astype(int)
    for k, column in enumerate(VOTE_COLUMNS):
        kept.provenance[VOTE_PREFIX + column] = votes[keep, k].astype(np.int64)
    counts = pd.Series(reasons[~keep]).value_counts().to_dict()
    kept.notes["ferplus"] = {
        "labels_file": path.name,
        "labelled": int(keep.sum()),
        "dropped": {k: int(counts.get(k, 0)) for k in ("tie", "unknown", "not_face", "unmatched")},
        "low_margin": int(low_margin[keep].sum()),
    }
    kept.name = f"{faces.name}+ferplus"
    return kept


def vote_distribution(votes: np.ndarray, classes: tuple[str, ...], class_of, fallback: np.ndarray) -> np.ndarray:
    """Per face, the annotators' distribution over a protocol's ``classes`` (rows sum to 1).

    As in FER+'s "probability" training mode (Barsoum et al. 2016, and its reference code): a class with a
    single vote is an outlier and loses it; "unknown" and "not a face" votes are left out; the emotions
    are mapped through the protocol (``class_of``: canonical label -> class or None to drop, e.g. paper5
    merges fear and surprise, fer7 drops contempt) and normalised. A face left with no vote (every vote
    dropped) gets ``fallback``'s class (its majority label id) as a one-hot row.
    """
    votes = np.asarray(votes, dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(votes), len(classes)), np.float64)
    for k, column in enumerate(VOTE_COLUMNS):
        target = class_of(VOTE_TO_LABEL[column]) if column in VOTE_TO_LABEL else None
        if target is not None:
            counts = votes[:, k]
            out[:, index[target]] += np.where(counts > 1, counts, 0.0)
    total = out.sum(axis=1, keepdims=True)
    empty = total[:, 0] == 0
    out[empty] = np.eye(len(classes))[np.asarray(fallback)[empty]]
    total[empty] = 1.0
    return (out / total).astype(np.float32)
