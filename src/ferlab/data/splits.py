"""Splits: which image goes to train, val or test, leak-free by default.

- ``paper``: the study's balanced subset: ``train_per_class`` and ``test_per_class`` images per class
  (1500 and 1000 in the study), drawn with a seed from the pooled train+test images (FER2013's official
  test split has only 958 angry images, so the study must have pooled), plus ``val_fraction`` x
  ``train_per_class`` validation images per class from what is left, so the training set stays exactly
  the study's size while model selection never looks at the test set.
- ``official``: the source's own split (FER2013: Training vs PublicTest+PrivateTest, or either test part
  alone); validation is a stratified ``val_fraction`` of the training part (or the source's own val).
- ``stratified``: a stratified random ``test_fraction`` / ``val_fraction`` split, for sources without
  their own split (CK+, JAFFE, a folder of your photos).
- ``test``: every image goes to test, none to train or val: an evaluation-only set (another corpus for a
  cross-data-set check with ``ferlab evaluate RUN --data DIR``).

Leak-free (default): pixel-identical images form a group; groups whose copies carry different labels,
and blank (single-value, e.g. all-black) images, are dropped; every other group keeps one image, so no
image is in two splits or twice in one. For ``official`` a group with a test copy stays in the test
split and its training copies are dropped. ``allow_leaks`` reproduces naive per-image sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ferlab.data.duplicates import exact_groups, near_duplicate_groups, pixel_hashes
from ferlab.data.faceset import FaceSet
from ferlab.data.protocols import Protocol
from ferlab.errors import FerlabError

ROLE_OF_ORIGIN = {"Training": "train", "train": "train", "PublicTest": "test", "PrivateTest": "test",
                  "test": "test", "val": "val", "": ""}
SPLITS = ("train", "val", "test")


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["paper", "official", "stratified", "test"] = "paper"
    train_per_class: int = Field(1500, ge=1)
    test_per_class: int = Field(1000, ge=1)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_part: Literal["both", "public", "private"] = "both"
    seed: int = 0
    allow_leaks: bool = False
    near_duplicate_threshold: int | None = Field(None, ge=0, le=16)


@dataclass
class SplitResult:
    index: np.ndarray     # chosen images, as indices into the FaceSet, ordered by split then source order
    split: np.ndarray     # "train" / "val" / "test" per chosen image
    class_id: np.ndarray  # label id under the protocol per chosen image
    hashes: np.ndarray    # pixel sha256 of every image in the FaceSet
    groups: np.ndarray    # duplicate-group id of every image in the FaceSet
    report: dict          # what was dropped and why


def expected_splits(cfg: SplitConfig) -> tuple[str, ...]:
    """The splits ``cfg`` means to fill with images of every class."""
    if cfg.kind == "test":
        return ("test",)
    # paper draws round(val_fraction x train_per_class) val images per class; the others carve val from train.
    has_val = round(cfg.val_fraction * cfg.train_per_class) > 0 if cfg.kind == "paper" else cfg.val_fraction > 0
    return ("train", "val", "test") if has_val else ("train", "test")


def origin_roles(provenance: pd.DataFrame) -> np.ndarray:
    return provenance["origin_split"].map(lambda s: ROLE_OF_ORIGIN.get(s, "")).to_numpy(dtype=object)


def assign_splits(faces: FaceSet, protocol: Protocol, cfg: SplitConfig) -> SplitResult:
    """Choose images and their splits under ``protocol``."""
    prov = faces.provenance
    classes = [protocol.class_of(lab) if lab else None for lab in prov["origin_label"]]
    class_id = np.array([protocol.classes.index(c) if c else -1 for c in classes], np.int64)
    hashes = pixel_hashes(faces.images)
    report: dict = {"images_in_source": len(faces), "dropped_by_protocol": int((class_id < 0).sum())}

    groups = exact_groups(hashes)
    if cfg.allow_leaks:
        keep = class_id >= 0
    else:
        if cfg.near_duplicate_threshold is not None:
            groups = near_duplicate_groups(faces.images, cfg.near_duplicate_threshold, base_groups=groups)
        flat = faces.images.reshape(len(faces), -1)
        blank = flat.max(axis=1) == flat.min(axis=1)
        keep = (class_id >= 0) & ~blank
        df = pd.DataFrame({"group": groups[keep], "cls": class_id[keep]})
        n_labels = df.groupby("group")["cls"].nunique()
        conflicting = n_labels.index[n_labels > 1].to_numpy()
        in_conflict = np.isin(groups, conflicting) & keep
        report.update({
            "blank_images_dropped": int((blank & (class_id >= 0)).sum()),
            "conflicting_label_groups_dropped": int(len(conflicting)),
            "conflicting_label_images_dropped": int(in_conflict.sum()),
        })
        keep &= ~in_conflict

    roles = origin_roles(prov)
    if cfg.kind == "official":
        if not (roles == "train").any() or not (roles == "test").any():
            raise FerlabError("split 'official' needs a source with its own train and test parts; use --split paper or stratified")
        if cfg.test_part != "both":
            wanted = "PublicTest" if cfg.test_part == "public" else "PrivateTest"
            other_test = (roles == "test") & (prov["origin_split"].to_numpy() != wanted)
            if not (prov["origin_split"] == wanted).any():
                raise FerlabError(f"--test-part {cfg.test_part}: the source has no {wanted} images")
            keep &= ~other_test

    chosen = np.flatnonzero(keep) if cfg.allow_leaks else _one_per_group(groups, keep, roles, cfg.kind == "official")
    if not cfg.allow_leaks:
        report["duplicate_copies_dropped"] = int(keep.sum() - len(chosen))
    rng = np.random.default_rng(cfg.seed)
    if cfg.kind == "paper":
        split = _paper(chosen, class_id, protocol, cfg, rng)
    elif cfg.kind == "official":
        split = _official(chosen, class_id, roles, cfg, rng)
    elif cfg.kind == "test":
        split = np.full(len(chosen), "test", dtype=object)
    else:
        split = _stratified(chosen, class_id, cfg, rng)
    take = split != ""
    index, split = chosen[take], split[take]
    order = np.lexsort((index, [SPLITS.index(s) for s in split]))  # by split, then source order
    index, split = index[order], split[order]
    return SplitResult(index, split, class_id[index], hashes, groups, report)


def _one_per_group(groups: np.ndarray, keep: np.ndarray, roles: np.ndarray, prefer_test: bool) -> np.ndarray:
    """Index of one kept image per group: its first, or its first test copy when ``prefer_test``."""
    idx = np.flatnonzero(keep)
    if prefer_test:
        rank = np.array([{"test": 0, "val": 1}.get(r, 2) for r in roles[idx]])
        idx = idx[np.lexsort((idx, rank))]
    _, first = np.unique(groups[idx], return_index=True)
    return np.sort(idx[first])


def _paper(chosen, class_id, protocol, cfg, rng) -> np.ndarray:
    n_val = int(round(cfg.val_fraction * cfg.train_per_class))
    need = cfg.train_per_class + cfg.test_per_class + n_val
    split = np.full(len(chosen), "", dtype=object)
    for c, name in enumerate(protocol.classes):
        members = np.flatnonzero(class_id[chosen] == c)
        if len(members) < need:
            raise FerlabError(
                f"class {name!r} has {len(members)} usable images{'' if cfg.allow_leaks else ' after de-duplication'} "
                f"but train_per_class {cfg.train_per_class} + test_per_class {cfg.test_per_class} + "
                f"{n_val} validation need {need}; lower the counts (--train-per-class, --test-per-class, --val-fraction)"
            )
        members = rng.permutation(members)
        split[members[:cfg.test_per_class]] = "test"
        split[members[cfg.test_per_class:cfg.test_per_class + cfg.train_per_class]] = "train"
        split[members[cfg.test_per_class + cfg.train_per_class:need]] = "val"
    return split


def _carve_val(split: np.ndarray, labels: np.ndarray, fraction: float, rng) -> None:
    """Move a stratified ``fraction`` of each class's train images to val (in place)."""
    for c in np.unique(labels):
        members = np.flatnonzero((split == "train") & (labels == c))
        n_val = int(round(fraction * len(members)))
        split[rng.permutation(members)[:n_val]] = "val"


def _official(chosen, class_id, roles, cfg, rng) -> np.ndarray:
    split = roles[chosen].astype(object).copy()
    split[~np.isin(split, SPLITS)] = ""
    if not (split == "val").any() and cfg.val_fraction > 0:
        _carve_val(split, class_id[chosen], cfg.val_fraction, rng)
    return split


def _stratified(chosen, class_id, cfg, rng) -> np.ndarray:
    split = np.full(len(chosen), "train", dtype=object)
    labels = class_id[chosen]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        split[rng.permutation(members)[:int(round(cfg.test_fraction * len(members)))]] = "test"
    _carve_val(split, labels, cfg.val_fraction, rng)
    return split
