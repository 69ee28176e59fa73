"""Input pipelines over the in-memory uint8 48x48 arrays.

Images stay uint8 at 48x48 (13,250 study images: 30 MB); the model resizes and normalises inside its
graph, so no 224x224 float32 copy (7.5 GB for the study's data) is ever made. Shuffling is a pure
function of (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import ferlab.backend  # noqa: F401, I001  (TensorFlow imported quietly, before it is used)
import tensorflow as tf

from ferlab.train.augment import augment_batch

if TYPE_CHECKING:
    from ferlab.train.config import AugmentConfig


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  num_classes: int, one_hot: bool = False, augment: "AugmentConfig | None" = None) -> tf.data.Dataset:
    """Batches for epochs ``first_epoch .. epochs-1``; each epoch a seeded permutation, each batch seeded.

    ``y``: (N,) class ids (one-hot encoded when ``one_hot``), or (N, classes) float rows of class
    probabilities (label distributions), passed through as they are."""
    n = len(x)
    steps = steps_per_epoch(n, batch_size)
    order = np.concatenate([epoch_permutation(n, seed, e) for e in range(first_epoch, epochs)]) if epochs > first_epoch \
        else np.zeros(0, np.int64)
    # Batch boundaries must fall on epoch boundaries: pad each epoch's index list into `steps` batches.
    starts = [(e - first_epoch) * n + s * batch_size for e in range(first_epoch, epochs) for s in range(steps)]
    ends = [min(start + batch_size, (start // n + 1) * n) for start in starts]
    ragged = tf.RaggedTensor.from_row_limits(order.astype(np.int64), np.array(ends, np.int64)) if starts else None
    soft = y.ndim == 2
    xs, ys = tf.constant(x), tf.constant(y.astype(np.float32 if soft else np.int64))
    first_batch = first_epoch * steps

    def load(batch_no, idx):
        images = tf.cast(tf.gather(xs, idx), tf.float32)
        if augment is not None and augment.enabled:
            images = augment_batch(images, tf.stack([tf.constant(seed, tf.int64), first_batch + batch_no]), augment)
        labels = tf.gather(ys, idx)
        return images, (tf.one_hot(labels, num_classes) if one_hot and not soft else labels)

    ds = tf.data.Dataset.from_tensor_slices(ragged if ragged is not None else tf.ragged.constant([[0]], tf.int64)[:0])
    return ds.enumerate().map(lambda i, idx: load(i, idx), num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int = 256, num_classes: int = 0,
                 one_hot: bool = False) -> tf.data.Dataset:
    """Unshuffled, unaugmented batches (float32 in [0, 255]) for validation and prediction."""
    ds = tf.data.Dataset.from_tensor_slices(x)
    if y is not None:
        labels = tf.one_hot(y, num_classes) if one_hot else y.astype(np.int64)
        ds = tf.data.Dataset.from_tensor_slices((x, labels))
        return ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(tf.data.AUTOTUNE)
    return ds.batch(batch_size).map(lambda a: tf.cast(a, tf.float32)).prefetch(tf.data.AUTOTUNE)
