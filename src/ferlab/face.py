"""The raw-face contract: what every ferlab model, exported file and face crop is.

A face is a square grayscale crop of ``FACE_SIZE`` x ``FACE_SIZE`` pixels (FER2013's 48), values in
[0, 255]. The data layer stores faces as uint8 ``(N, 48, 48)``; models and exported runtimes take float32
``(N, 48, 48, 1)`` (the resizing and normalisation a backbone needs happen inside the graph), and the
deployment path crops faces out of frames to this size. This module is the only place that says so.
"""

from __future__ import annotations

import numpy as np

from ferlab.errors import FerlabError

FACE_SIZE = 48
FACE_SHAPE = (FACE_SIZE, FACE_SIZE, 1)  # one face as a model input: height, width, channels
FACE_DTYPE = np.uint8  # how faces are stored and cropped


def as_face_batch(faces: np.ndarray) -> np.ndarray:
    """(48, 48), (48, 48, 1), (N, 48, 48) or (N, 48, 48, 1) pixels -> float32 (N, 48, 48, 1) in [0, 255]."""
    faces = np.asarray(faces)
    if faces.ndim == 2 or faces.shape == FACE_SHAPE:  # one face (48 faces of 48x1 cannot be)
        faces = faces[None]
    if faces.ndim == 3:
        faces = faces[..., None]
    if faces.shape[1:] != FACE_SHAPE:
        raise FerlabError(f"faces: expected (N, {FACE_SIZE}, {FACE_SIZE}[, 1]) grayscale crops, got shape {faces.shape}")
    return faces.astype(np.float32, copy=False)


def blank_faces(n: int = 0) -> np.ndarray:
    """``n`` black faces, uint8 (n, 48, 48); ``blank_faces()`` is a batch of no faces."""
    return np.zeros((n, FACE_SIZE, FACE_SIZE), FACE_DTYPE)


def random_faces(n: int = 1, seed: int = 0) -> np.ndarray:
    """``n`` faces of uniform random pixels, float32 (n, 48, 48, 1): an input for timing a model."""
    return np.random.default_rng(seed).integers(0, 256, (n, *FACE_SHAPE)).astype(np.float32)


def is_face_array(images: np.ndarray) -> bool:
    """Whether ``images`` is a stored face set: uint8 (N, 48, 48)."""
    return images.dtype == FACE_DTYPE and images.ndim == 3 and images.shape[1:] == (FACE_SIZE, FACE_SIZE)
