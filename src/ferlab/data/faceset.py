"""The one form every data source yields: 48x48 uint8 grayscale faces, labels, and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ferlab.face import FACE_SIZE, is_face_array

# Canonical names of the original labels a source may carry. FER2013's seven, plus FER+'s contempt.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer2013.csv ids 0-6
CANONICAL_LABELS = FER2013_CLASSES + ("contempt",)

# Provenance columns every source fills (extra columns are allowed and carried into the manifest).
PROVENANCE_COLUMNS = ("source", "origin_split", "origin_label")


@dataclass
class FaceSet:
    """Faces as loaded from a source, before any protocol or split is applied.

    images: (N, 48, 48) uint8 grayscale.
    provenance: one row per image with at least
        source        where the image came from (relative file path, ``csv:ROW``, ``synthetic:I``)
        origin_split  the source's own split: ``Training``, ``PublicTest``, ``PrivateTest`` for FER2013,
                      ``train``/``test``/``val`` for image folders, ``""`` when the source has none
        origin_label  the original label as a canonical name (see CANONICAL_LABELS) or ``""`` if unlabelled
    name: a short description of the source, recorded in the prepared data set's metadata (ferlab.data.prepare).
    """

    images: np.ndarray
    provenance: pd.DataFrame
    name: str
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_face_array(self.images):
            raise ValueError(f"FaceSet images must be (N, {FACE_SIZE}, {FACE_SIZE}) uint8, got {self.images.shape} {self.images.dtype}")
        if len(self.provenance) != len(self.images):
            raise ValueError("FaceSet provenance must have one row per image")
        missing = [c for c in PROVENANCE_COLUMNS if c not in self.provenance.columns]
        if missing:
            raise ValueError(f"FaceSet provenance lacks columns {missing}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> "FaceSet":
        index = np.asarray(index)
        return FaceSet(self.images[index], self.provenance.iloc[index].reset_index(drop=True), self.name, dict(self.notes))
