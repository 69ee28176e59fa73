"""Summaries of a source or a prepared data set: counts, duplicates, leakage, and a sample montage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferlab.data.duplicates import duplicate_statistics, exact_groups, pixel_hashes
from ferlab.data.faceset import FaceSet
from ferlab.data.splits import origin_roles


def source_summary(faces: FaceSet) -> dict:
    """Counts per original split and label, and duplicate statistics, of a loaded source."""
    prov = faces.provenance
    counts = prov.groupby(["origin_split", "origin_label"]).size().unstack(fill_value=0)
    groups = exact_groups(pixel_hashes(faces.images))
    return {
        "name": faces.name,
        "images": len(faces),
        "counts": {split: {k: int(v) for k, v in row.items()} for split, row in counts.iterrows()},
        "duplicates": duplicate_statistics(groups, origin_roles(prov), prov["origin_label"].to_numpy(), faces.images),
        "notes": faces.notes,
    }


def write_montage(images: np.ndarray, labels: list[str], classes: list[str], path: str | os.PathLike,
                  per_class: int = 10, seed: int = 0) -> Path:
    """A PNG with one row of ``per_class`` random samples per class, the class name at the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferlab.io import atomic_write_bytes

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.8, len(classes) * 0.85), squeeze=False)
    for r, name in enumerate(classes):
        members = np.flatnonzero(labels == name)
        picks = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(picks):
                ax.imshow(images[picks[c]], cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_ylabel(f"{name}\n({len(members)})", rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.3)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
