"""Exact and near duplicates: pixel hashes, duplicate groups, and the statistics that show leakage.

FER2013 holds 1,516 groups of pixel-identical images, 531 of them across its official train/test split,
so a naive split tests partly on training images. Groups here are what the leak-free splits keep together.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def pixel_hashes(images: np.ndarray) -> np.ndarray:
    """sha256 hex digest of each image's raw uint8 pixels (identical pixels <=> identical hash)."""
    return np.array([hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images], dtype=object)


def exact_groups(hashes: np.ndarray) -> np.ndarray:
    """Group id per image: images share an id iff their pixels are identical (ids in order of first use)."""
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # renumber so the group of image 0 is 0, etc.
    return order[inverse].astype(np.int64)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hash (pHash) per image, as uint64.

    Written here rather than taken from ``imagehash`` because that library works one PIL image at a
    time; this is the same algorithm (32x32 resize, 2-D DCT, top-left 8x8 low frequencies vs their
    median) in a few vectorised lines.
    """
    import cv2

    bits = np.empty((len(images), 64), bool)
    for i, im in enumerate(images):
        small = cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        low = cv2.dct(small)[:8, :8].ravel()
        bits[i] = low > np.median(low[1:])  # the DC term is excluded from the median, as in pHash
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def near_duplicate_groups(images: np.ndarray, threshold: int, base_groups: np.ndarray | None = None) -> np.ndarray:
    """Union images whose pHashes differ in at most ``threshold`` bits (and any already in one group).

    Candidate pairs come from the pigeonhole principle: split the 64 bits into threshold+1 bands; two
    hashes within ``threshold`` bits agree exactly on at least one band, so bucketing by band finds every
    pair without comparing all N^2.
    """
    n = len(images)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    if base_groups is not None:
        first: dict[int, int] = {}
        for i, g in enumerate(base_groups):
            union(first.setdefault(int(g), i), i)
    hashes = perceptual_hashes(images)
    n_bands = threshold + 1
    edges = np.linspace(0, 64, n_bands + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = (hashes >> np.uint64(64 - hi)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(band, kind="stable")
        sorted_band = band[order]
        starts = np.flatnonzero(np.r_[True, sorted_band[1:] != sorted_band[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], n]):
            if e - s < 2:
                continue
            members = order[s:e]
            for j, a in enumerate(members[:-1]):
                close = np.array([bin(int(x)).count("1") for x in (hashes[members[j + 1:]] ^ hashes[a])]) <= threshold
                for b in members[j + 1:][close]:
                    union(int(a), int(b))
    roots = np.array([find(i) for i in range(n)])
    return exact_groups(roots.astype(str).astype(object))


def _within(groups: pd.Series, labels: pd.Series) -> dict:
    sizes = groups.value_counts()
    dup = sizes[sizes > 1]
    in_dup = groups.isin(dup.index)
    conflicting = labels[in_dup].groupby(groups[in_dup]).nunique()
    return {
        "images": int(len(groups)),
        "distinct": int(groups.nunique()),
        "duplicate_groups": int(len(dup)),
        "images_in_duplicate_groups": int(dup.sum()),
        "redundant_copies": int(dup.sum() - len(dup)),
        "conflicting_label_groups": int((conflicting > 1).sum()),
    }


def duplicate_statistics(groups: np.ndarray, roles: np.ndarray, labels: np.ndarray, images: np.ndarray) -> dict:
    """Duplicate and leakage statistics of a source, by its own train/test roles."""
    df = pd.DataFrame({"group": groups, "role": roles, "label": labels})
    stats: dict = {"overall": _within(df["group"], df["label"])}
    sizes = df["group"].value_counts()
    stats["overall"]["group_sizes"] = {int(k): int(v) for k, v in sizes[sizes > 1].value_counts().sort_index().items()}
    stats["blank_images"] = int((images.reshape(len(images), -1).max(axis=1) == images.reshape(len(images), -1).min(axis=1)).sum())
    for role in ("train", "val", "test"):
        part = df[df["role"] == role]
        if len(part):
            stats[f"within_{role}"] = _within(part["group"], part["label"])
    train, test = df[df["role"] == "train"], df[df["role"] == "test"]
    if len(train) and len(test):
        shared = np.intersect1d(train["group"].unique(), test["group"].unique())
        test_leaked = test[test["group"].isin(shared)]
        train_labels = train[train["group"].isin(shared)].groupby("group")["label"].agg(set)
        same_label = sum(lab in train_labels[g] for g, lab in zip(test_leaked["group"], test_leaked["label"]))
        stats["across_train_test"] = {
            "distinct_images_in_both": int(len(shared)),
            "test_images_with_train_copy": int(len(test_leaked)),
            "train_images_involved": int(train["group"].isin(shared).sum()),
            "test_images_with_same_label_train_copy": int(same_label),
        }
    return stats
