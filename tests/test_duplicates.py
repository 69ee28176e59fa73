"""Exact and near-duplicate grouping on small made-up sets."""

from __future__ import annotations

import numpy as np

from ferlab.data.duplicates import exact_groups, near_duplicate_groups, pixel_hashes


def _faces(n: int = 40) -> np.ndarray:
    from ferlab.data.synthetic import load_synthetic

    return load_synthetic(per_class=n // 7 + 1, seed=3).images[:n]


def test_exact_groups_follow_identical_pixels():
    faces = _faces(10)
    images = np.concatenate([faces, faces[[2, 5]]])
    groups = exact_groups(pixel_hashes(images))
    assert groups[10] == groups[2] and groups[11] == groups[5]
    assert len(set(groups)) == 10


def test_near_duplicates_are_grouped_and_distinct_faces_are_not():
    faces = _faces(40)
    rng = np.random.default_rng(0)
    # Re-encoded / slightly brightened copies of the first five faces.
    noisy = np.clip(faces[:5].astype(int) + rng.integers(-2, 3, faces[:5].shape) + 3, 0, 255).astype(np.uint8)
    images = np.concatenate([faces, noisy])
    exact = exact_groups(pixel_hashes(images))
    assert len(set(exact)) == 45  # no exact duplicates
    near = near_duplicate_groups(images, threshold=6, base_groups=exact)
    for i in range(5):
        assert near[40 + i] == near[i]
    assert len(set(near[:40])) >= 38  # different synthetic faces stay apart (at most a rare collision)
    strict = near_duplicate_groups(images, threshold=0, base_groups=exact)
    assert len(set(strict)) >= len(set(near))


def test_prepare_with_near_duplicate_grouping(tmp_path):
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.data.splits import SplitConfig

    split = SplitConfig(kind="stratified", near_duplicate_threshold=4)
    data = prepare(PrepareConfig(source="synthetic", synthetic_per_class=30, split=split), tmp_path / "p")
    assert data.meta["config"]["split"]["near_duplicate_threshold"] == 4
    m = data.manifest
    assert m["hash"].is_unique and sum(data.meta["totals"].values()) == len(m)
