"""Test-time augmentation: the choices, and the face transforms they average over."""

from __future__ import annotations

import numpy as np

TTA_CHOICES = ("none", "flip")  # flip: each face averaged with its mirror image (expressions are left-right symmetric)


def mirrored(faces: np.ndarray) -> np.ndarray:
    """The faces flipped left-right ((N, H, W[, C]) arrays)."""
    return np.ascontiguousarray(faces[:, :, ::-1])
