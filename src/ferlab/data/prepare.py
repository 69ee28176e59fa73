"""Prepared data sets: ``images.npy`` + ``manifest.csv`` + ``data.json``, written atomically.

Same inputs and seed give byte-identical files (nothing time- or machine-dependent is written).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ferlab import __version__
from ferlab.data.duplicates import duplicate_statistics
from ferlab.data.faceset import FaceSet
from ferlab.data.protocols import Protocol, get_protocol
from ferlab.data.sources import Progress, load_source
from ferlab.data.splits import SPLITS, SplitConfig, assign_splits, origin_roles
from ferlab.errors import FerlabError
from ferlab.io import atomic_dir, read_json

FORMAT_VERSION = 1


class PrepareConfig(BaseModel):
    """Everything that determines a prepared data set."""

    model_config = ConfigDict(extra="forbid")

    source: str = "synthetic"
    protocol: str = "paper5"
    labels: str = "original"  # or "ferplus"
    ferplus: str | None = None  # fer2013new.csv (CSV source) or fer2013_jpg_to_ferplus.csv (folder source)
    split: SplitConfig = Field(default_factory=SplitConfig)
    skip_bad: bool = False
    synthetic_per_class: int | None = Field(None, ge=1)


def load_faces(cfg: PrepareConfig, progress: Progress | None = None) -> FaceSet:
    """The source's faces, relabelled with FER+ when asked."""
    faces = load_source(cfg.source, skip_bad=cfg.skip_bad, synthetic_per_class=cfg.synthetic_per_class,
                        progress=progress)
    wants_ferplus = cfg.labels == "ferplus" or (cfg.protocol == "ferplus8" and cfg.labels != "original")
    if cfg.labels not in ("original", "ferplus"):
        raise FerlabError(f"--labels {cfg.labels!r}: choose 'original' or 'ferplus'")
    if wants_ferplus:
        if not cfg.ferplus:
            raise FerlabError("--labels ferplus needs --ferplus PATH (fer2013new.csv for a CSV source, fer2013_jpg_to_ferplus.csv for an image folder)")
        from ferlab.data.ferplus import attach_ferplus

        faces = attach_ferplus(faces, cfg.ferplus)
    return faces


def prepare(cfg: PrepareConfig, out: str | os.PathLike, *, overwrite: bool = False,
            faces: FaceSet | None = None, progress: Progress | None = None) -> "PreparedData":
    """Load, map, split and write a prepared data set to ``out``; return it loaded.

    ``faces`` lets a caller that already loaded the source (e.g. to prepare several splits) skip reloading.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FerlabError(f"{out} already exists; choose another --out or pass --overwrite")
    protocol = get_protocol(cfg.protocol)
    faces = faces if faces is not None else load_faces(cfg, progress)
    result = assign_splits(faces, protocol, cfg.split)
    chosen = faces.provenance.iloc[result.index].reset_index(drop=True)
    manifest = pd.DataFrame({
        "index": np.arange(len(result.index)),
        "source": chosen["source"],
        "origin_split": chosen["origin_split"],
        "origin_label": chosen["origin_label"],
        "label": [protocol.classes[c] for c in result.class_id],
        "label_id": result.class_id,
        "split": result.split,
        "hash": result.hashes[result.index],
        "duplicate_group": result.groups[result.index],
    })
    extra = [c for c in chosen.columns if c not in manifest.columns]
    manifest = pd.concat([manifest, chosen[extra]], axis=1)
    images = np.ascontiguousarray(faces.images[result.index])

    npy = io.BytesIO()
    np.save(npy, images, allow_pickle=False)
    csv_bytes = manifest.to_csv(index=False, lineterminator="\n").encode()
    counts = {s: {c: int(((manifest["split"] == s) & (manifest["label"] == c)).sum()) for c in protocol.classes}
              for s in SPLITS}
    meta = {
        "format_version": FORMAT_VERSION,
        "ferlab_version": __version__,
        "source": {"spec": cfg.source, "name": faces.name, **{k: v for k, v in faces.notes.items() if k != "root"}},
        "protocol": protocol.model_dump(mode="json"),
        "config": cfg.model_dump(mode="json"),
        "counts": counts,
        "totals": {s: sum(counts[s].values()) for s in SPLITS},
        "dropped": result.report,
        "source_duplicates": duplicate_statistics(result.groups, origin_roles(faces.provenance),
                                                  faces.provenance["origin_label"].to_numpy(), faces.images),
        "fingerprint": hashlib.sha256(npy.getvalue() + csv_bytes).hexdigest()[:16],
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "images.npy").write_bytes(npy.getvalue())
        (tmp / "manifest.csv").write_bytes(csv_bytes)
        (tmp / "data.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return PreparedData(out)


@dataclass
class PreparedData:
    """A prepared data set on disk. ``arrays("train")`` gives (N, 48, 48, 1) uint8 images and int labels."""

    path: Path
    _arrays: dict = field(default_factory=dict, init=False, repr=False)  # split -> (images, labels)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        for name in ("images.npy", "manifest.csv", "data.json"):
            if not (self.path / name).is_file():
                raise FerlabError(f"{self.path}: not a prepared data set (no {name}); make one with 'ferlab data prepare --out {self.path}'")
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise FerlabError(f"{self.path}/data.json: format_version {self.meta.get('format_version')!r} is not {FORMAT_VERSION}; prepare it again with this ferlab")

    @cached_property
    def meta(self) -> dict:
        return read_json(self.path / "data.json", "data.json")

    @cached_property
    def manifest(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "manifest.csv", keep_default_na=False)

    @cached_property
    def images(self) -> np.ndarray:
        images = np.load(self.path / "images.npy", mmap_mode="r", allow_pickle=False)
        if images.ndim != 3 or images.shape[0] != len(self.manifest) or images.dtype != np.uint8:
            raise FerlabError(f"{self.path}/images.npy: shape {images.shape} {images.dtype} does not match manifest.csv ({len(self.manifest)} rows); prepare it again")
        return images

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["protocol"]["classes"])

    @property
    def protocol(self) -> Protocol:
        return Protocol(**self.meta["protocol"])

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in SPLITS:
            raise FerlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self._arrays:  # gathered once: a study asks for the same split in every trial
            rows = np.flatnonzero(self.manifest["split"].to_numpy() == split)
            self._arrays[split] = (np.asarray(self.images[rows])[..., None],
                                   self.manifest["label_id"].to_numpy()[rows].astype(np.int64))
        return self._arrays[split]
