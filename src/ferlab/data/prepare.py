"""Prepared data sets: ``images.npy`` + ``manifest.csv`` + ``data.json``, written atomically.

Same inputs and seed give byte-identical files (nothing time- or machine-dependent is written).
This module owns the set on disk: its files and its marker (:func:`is_prepared`: data.json, the file every
command tests before it reads a directory as a prepared set), its reader (:class:`PreparedData`), and the
one rule for a set a command prepares for itself, a study's or a zoo build's (:func:`prepare_or_reuse`:
reuse it if it was prepared with the same settings, prepare it if there is none, refuse it otherwise).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ferlab import __version__
from ferlab.config import first_difference
from ferlab.data.duplicates import duplicate_statistics
from ferlab.data.faceset import FaceSet
from ferlab.data.protocols import Protocol, get_protocol
from ferlab.data.source_kinds import Progress, load_source
from ferlab.data.splits import SPLITS, SplitConfig, assign_splits, expected_splits, origin_roles
from ferlab.errors import FerlabError
from ferlab.io import atomic_dir, read_json

FORMAT_VERSION = 1
MARKER = "data.json"  # the set's metadata; its presence marks a directory as a prepared data set
PREPARED_FILES = ("images.npy", "manifest.csv", MARKER)
PATH_SETTINGS = ("source", "ferplus")  # settings that name files: the same file however it is spelled
OWN_FILES = {*PREPARED_FILES, "montage.png"}  # what ferlab writes into a prepared directory (data info: the montage)


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
    # Option checks first: loading FER2013 takes minutes.
    wants_ferplus = cfg.labels == "ferplus" or (cfg.protocol == "ferplus8" and cfg.labels != "original")
    if cfg.labels not in ("original", "ferplus"):
        raise FerlabError(f"--labels {cfg.labels!r}: choose 'original' or 'ferplus'")
    if wants_ferplus and not cfg.ferplus:
        raise FerlabError("--labels ferplus needs --ferplus PATH (fer2013new.csv for a CSV source, fer2013_jpg_to_ferplus.csv for an image folder)")
    faces = load_source(cfg.source, skip_bad=cfg.skip_bad, synthetic_per_class=cfg.synthetic_per_class,
                        progress=progress)
    if wants_ferplus:
        from ferlab.data.ferplus import attach_ferplus

        faces = attach_ferplus(faces, cfg.ferplus)
    return faces


def check_out(out: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse an ``out`` that :func:`prepare` may not write; cheap, so callers run it before loading a source.

    ``overwrite`` replaces the directory wholesale, so it may replace only what ferlab made: a prepared data
    set holding nothing else, or an empty directory. Anything else is the user's and stays untouched.
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():  # replacing a link would not touch what it points to
        raise FerlabError(f"--out {out}: exists and is not a directory; choose another --out")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not _complete(out):
        raise FerlabError(f"--out {out}: exists and is not a prepared data set (holds {_some(entries)}); choose "
                          f"another --out (--overwrite replaces only a prepared data set or an empty directory)")
    foreign = [name for name in entries if name not in OWN_FILES]
    if foreign:
        raise FerlabError(f"--out {out}: holds {_some(foreign)} besides the prepared data set; move it away or "
                          f"choose another --out")
    if not overwrite:
        raise FerlabError(f"--out {out}: already exists; choose another --out or pass --overwrite")


def is_prepared(path: str | os.PathLike) -> bool:
    """Whether ``path`` is marked as a prepared data set (its data.json is there). :class:`PreparedData`
    then checks the rest, so a damaged set is one error line naming what is missing, not "no data set"."""
    return (Path(path) / MARKER).is_file()


def _complete(path: Path) -> bool:
    """Every file of a prepared set, with readable metadata: what ``--overwrite`` may replace."""
    if not all((path / name).is_file() for name in PREPARED_FILES):
        return False
    try:
        meta = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta  # any version: replacing an old one is the fix


def _some(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def prepare(cfg: PrepareConfig, out: str | os.PathLike, *, overwrite: bool = False,
            faces: FaceSet | None = None, progress: Progress | None = None) -> "PreparedData":
    """Load, map, split and write a prepared data set to ``out``; return it loaded.

    ``faces`` lets a caller that already loaded the source (e.g. to prepare several splits) skip reloading.
    Classes missing from a split are listed in the metadata's ``warnings`` (see :func:`coverage_warnings`).
    """
    out = Path(out)
    check_out(out, overwrite)
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
    npy, csv_bytes = _encoded(faces.images[result.index], manifest)
    counts = _counts(manifest, protocol.classes)
    warnings = coverage_warnings(counts, cfg, protocol, len(faces.notes.get("skipped") or ()), result.report)
    meta = {
        "format_version": FORMAT_VERSION,
        "ferlab_version": __version__,
        "source": {"spec": cfg.source, "name": faces.name, **{k: v for k, v in faces.notes.items() if k != "root"}},
        "protocol": protocol.model_dump(mode="json"),
        "config": cfg.model_dump(mode="json"),
        "counts": counts,
        "totals": {s: sum(counts[s].values()) for s in SPLITS},
        "dropped": result.report,
        "warnings": warnings,
        "source_duplicates": duplicate_statistics(result.groups, origin_roles(faces.provenance),
                                                  faces.provenance["origin_label"].to_numpy(), faces.images),
        "fingerprint": hashlib.sha256(npy + csv_bytes).hexdigest()[:16],
    }
    check_out(out, overwrite)  # again: the source may have taken minutes to load
    return _write(out, npy, csv_bytes, meta, overwrite)


def _encoded(images: np.ndarray, manifest: pd.DataFrame) -> tuple[bytes, bytes]:
    """The set's two data files' bytes (their SHA-256 is the set's fingerprint)."""
    npy = io.BytesIO()
    np.save(npy, np.ascontiguousarray(images), allow_pickle=False)
    return npy.getvalue(), manifest.to_csv(index=False, lineterminator="\n").encode()


def _counts(manifest: pd.DataFrame, classes) -> dict:
    return {s: {c: int(((manifest["split"] == s) & (manifest["label"] == c)).sum()) for c in classes} for s in SPLITS}


def _write(out: Path, npy: bytes, csv_bytes: bytes, meta: dict, overwrite: bool = False) -> PreparedData:
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "images.npy").write_bytes(npy)
        (tmp / "manifest.csv").write_bytes(csv_bytes)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return PreparedData(out)


def prepare_or_reuse(cfg: PrepareConfig, out: str | os.PathLike, *, says: str, fix: str,
                     on_prepare: Callable[[], None] | None = None) -> PreparedData:
    """The data set prepared with ``cfg`` at ``out``: the one there if it was prepared with every setting
    ``cfg`` states, else prepared now (``on_prepare`` first, to say so). A set there prepared with other
    settings is refused with one line: its first differing setting, what ``says`` the wanted value (``"the
    spec's [data] says"``), and ``fix``. One rule for every command that prepares its own data, so a rerun
    with changed settings never trains on the old set. A caller states what defines its set: a study every
    setting (its data is its spec's [data], defaults included), a zoo build its spec's [data] and the
    source, so a set prepared there beforehand with, say, fewer synthetic faces serves it."""
    out = Path(out)
    if not is_prepared(out):
        if on_prepare is not None:
            on_prepare()
        return prepare(cfg, out)
    data = PreparedData(out)
    diff = data.config_difference(cfg, says)
    if diff is not None:
        raise FerlabError(f"{out}: prepared with {diff}; {fix}")
    return data


def training_folds(data: PreparedData, k: int, seed: int) -> np.ndarray:
    """Each training face's fold (0 .. k-1), in ``arrays("train")`` order. Whole duplicate groups are dealt to
    the folds (a seeded shuffle, then round robin), so a network that trains without a fold never trained on
    a copy of one of its faces, and the folds differ in size by at most a group."""
    groups = data.manifest["duplicate_group"].to_numpy()[data.manifest["split"].to_numpy() == "train"]
    unique, group_of_face = np.unique(groups, return_inverse=True)
    fold_of_group = np.random.default_rng(seed).permutation(len(unique)) % k
    return fold_of_group[group_of_face]


def without_training_faces(data: PreparedData, drop: np.ndarray, out: str | os.PathLike, note: dict) -> PreparedData:
    """A prepared set at ``out``: ``data`` without the training faces ``drop`` marks (bool, ``arrays("train")``
    order), its validation and test faces unchanged. Its data.json says where it came from (``derived``: the
    parent's fingerprint and ``note``), so the one there is reused only if it was made the same way."""
    out = Path(out)
    derived = {"from": data.fingerprint, **note}
    if is_prepared(out):
        there = PreparedData(out)
        if there.meta.get("derived") != derived:
            raise FerlabError(f"{out}: a prepared set made otherwise ({there.meta.get('derived')}); remove it or "
                              f"choose another work folder")
        return there
    split = data.manifest["split"].to_numpy()
    train_rows = np.flatnonzero(split == "train")
    if len(drop) != len(train_rows):
        raise FerlabError(f"{data.path}: {len(drop)} flags for {len(train_rows)} training faces")
    keep = np.ones(len(split), bool)
    keep[train_rows[np.asarray(drop, bool)]] = False
    manifest = data.manifest[keep].reset_index(drop=True).assign(index=np.arange(int(keep.sum())))
    npy, csv_bytes = _encoded(data.images[keep], manifest)
    counts = _counts(manifest, data.classes)
    meta = {**data.meta, "counts": counts, "totals": {s: sum(counts[s].values()) for s in SPLITS},
            "derived": derived, "fingerprint": hashlib.sha256(npy + csv_bytes).hexdigest()[:16]}
    return _write(out, npy, csv_bytes, meta)


def _same_file(a: str | None, b: str | None) -> bool:
    return a == b or (a is not None and b is not None and Path(a).resolve() == Path(b).resolve())


def _stated(recorded: dict, wanted: dict) -> dict:
    """``recorded`` cut down to the keys ``wanted`` states, at every depth."""
    return {k: _stated(recorded[k], v) if isinstance(v, dict) and isinstance(recorded.get(k), dict) else recorded.get(k)
            for k, v in wanted.items()}


def coverage_warnings(counts: dict, cfg: PrepareConfig, protocol: Protocol, n_skipped: int, report: dict) -> list[str]:
    """One line per split that lacks a class it should hold; an error when no image is left for test.

    A class missing from a split is a warning, not an error: the set still serves its purpose (the other
    classes train and score; a small corpus, or one for a cross-data-set check, may simply lack a class),
    but that class is never learned or never scored, so the user must hear it (most often --skip-bad
    dropped every file of it). So is an empty train or val split: the set still serves ``ferlab evaluate``.
    No test image at all is an error: training, ``evaluate`` and the export parity check all score on
    test, so nothing could use the set.
    """
    cause = f"; {n_skipped} unreadable file(s) were skipped with --skip-bad" if n_skipped else ""
    if not sum(counts["test"].values()):
        fix = {"stratified": "raise --test-fraction (a class of n images gives round(n x fraction) to test) or add images",
               "official": "the source's test part has no usable image: check --source, --protocol and --test-part",
               }.get(cfg.split.kind, "no usable image is left: check --source and --protocol")
        kept = sum(sum(per_class.values()) for per_class in counts.values())
        raise FerlabError(f"no image would go to the test split ({kept} kept of {report['images_in_source']} in the "
                          f"source{cause}); {fix}")
    expected = expected_splits(cfg.split)
    warnings = []
    for split in expected:
        empty = [c for c in protocol.classes if counts[split][c] == 0]
        if split == "val" and not sum(counts["train"].values()):
            continue  # val is carved from train: said once, for train
        if len(empty) == len(protocol.classes):
            fix = ("no model can be trained on this set (for an evaluation-only set use --split test)" if split == "train"
                   else "training needs validation images: raise --val-fraction or add images")
            warnings.append(f"the {split} split is empty{cause}; {fix}")
        elif empty:
            role = {"train": "learned", "val": "validated", "test": "scored"}[split]
            one = len(empty) == 1
            warnings.append(f"no {split} images of class{'' if one else 'es'} {', '.join(map(repr, empty))} (protocol "
                            f"{protocol.name}): {'it is' if one else 'they are'} never {role} on this set{cause}; add "
                            f"images of {'it' if one else 'them'} or use a protocol without {'it' if one else 'them'}")
    return warnings


@dataclass
class PreparedData:
    """A prepared data set on disk. ``arrays("train")`` gives (N, 48, 48, 1) uint8 images and int labels."""

    path: Path
    _arrays: dict = field(default_factory=dict, init=False, repr=False)  # split -> (images, labels)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        for name in PREPARED_FILES:
            if not (self.path / name).is_file():
                raise FerlabError(f"{self.path}: not a prepared data set (no {name}); make one with 'ferlab data prepare --out {self.path}'")
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise FerlabError(f"{self.path / MARKER}: format_version {self.meta.get('format_version')!r} is not {FORMAT_VERSION}; prepare it again with this ferlab")

    @cached_property
    def meta(self) -> dict:
        return read_json(self.path / MARKER, MARKER)

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

    def config_difference(self, cfg: PrepareConfig, says: str) -> str | None:
        """The first setting stated in ``cfg`` (set, not left to its default) that this set was prepared
        without (``"split.seed = 1 (SAYS 0)"``), or None. The recorded settings are read as today's
        :class:`PrepareConfig` (a setting added since takes its default, as it did then), and a path setting
        matches the same file however it is spelled."""
        try:
            recorded = PrepareConfig.model_validate(self.meta.get("config")).model_dump(mode="json")
        except ValidationError:
            return f"settings this ferlab cannot read ({self.path / MARKER} 'config')"
        wanted = cfg.model_dump(mode="json", exclude_unset=True)
        for key in PATH_SETTINGS:
            if key in wanted and _same_file(recorded[key], wanted[key]):
                recorded[key] = wanted[key]
        return first_difference(_stated(recorded, wanted), wanted, says)

    @property
    def has_votes(self) -> bool:
        """Whether the faces carry annotators' votes (prepared with FER+ labels)."""
        from ferlab.data.ferplus import VOTE_COLUMNS, VOTE_PREFIX

        return all(VOTE_PREFIX + c in self.manifest.columns for c in VOTE_COLUMNS)

    def label_distribution(self, split: str) -> np.ndarray:
        """(N, classes) float32: each face's label distribution from its annotators' votes, rows in
        ``arrays(split)`` order (:func:`ferlab.data.ferplus.vote_distribution`). Data without votes is one
        error line: the distribution needs FER+ labels."""
        from ferlab.data.ferplus import VOTE_COLUMNS, VOTE_PREFIX, vote_distribution

        if not self.has_votes:
            raise FerlabError(f"{self.path}: no annotator votes in manifest.csv, so no label distribution; prepare "
                              f"the data with --labels ferplus --ferplus FILE, or train on the majority label")
        rows = np.flatnonzero(self.manifest["split"].to_numpy() == split)
        votes = self.manifest[[VOTE_PREFIX + c for c in VOTE_COLUMNS]].to_numpy()[rows]
        protocol = self.protocol
        return vote_distribution(votes, self.classes, lambda label: protocol.map.get(label) or None,
                                 self.arrays(split)[1])

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in SPLITS:
            raise FerlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self._arrays:  # gathered once: a study asks for the same split in every trial
            rows = np.flatnonzero(self.manifest["split"].to_numpy() == split)
            self._arrays[split] = (np.asarray(self.images[rows])[..., None],
                                   self.manifest["label_id"].to_numpy()[rows].astype(np.int64))
        return self._arrays[split]
