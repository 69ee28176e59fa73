"""Stateless, seeded augmentation of 48x48 face batches.

Written with TensorFlow's stateless random ops rather than Keras's RandomFlip/RandomRotation/... layers
because those keep a hidden RNG state that is not checkpointed: a resumed run would then see different
augmentations than an uninterrupted one. Here every batch's randomness is a pure function of
(run seed, global batch number), so a run killed and resumed is bit-identical to one that never stopped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import ferlab.backend  # noqa: F401, I001  (TensorFlow imported quietly, before it is used)
import tensorflow as tf

if TYPE_CHECKING:
    from ferlab.train.config import AugmentConfig


def augment_batch(x: tf.Tensor, seed: tf.Tensor, cfg: "AugmentConfig") -> tf.Tensor:
    """Augment a float32 batch (B, H, W, 1) in [0, 255]; ``seed`` is an int32/int64 tensor of shape [2]."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    s_flip, s_rot, s_zoom, s_shift, s_erase = tf.unstack(tf.random.experimental.stateless_split(seed, 5))

    if cfg.flip:
        flip = tf.random.stateless_uniform([b], s_flip) < 0.5
        x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)

    if cfg.rotation > 0 or cfg.zoom > 0 or cfg.shift > 0:
        angle = tf.random.stateless_uniform([b], s_rot, -cfg.rotation, cfg.rotation) * (math.pi / 180.0)
        scale = tf.random.stateless_uniform([b], s_zoom, 1.0 - cfg.zoom, 1.0 + cfg.zoom)
        shift = tf.random.stateless_uniform([b, 2], s_shift, -cfg.shift, cfg.shift) * tf.constant([w, h], tf.float32)
        # Output pixel p samples input A(p - c - t) + c, where A = R(-angle) / scale.
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        ox, oy = cx + shift[:, 0], cy + shift[:, 1]
        transforms = tf.stack([cos, sin, cx - cos * ox - sin * oy,
                               -sin, cos, cy + sin * ox - cos * oy,
                               tf.zeros([b]), tf.zeros([b])], axis=1)
        x = tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=transforms, output_shape=[h, w],
                                                  fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")

    if cfg.erasing > 0:
        # Random erasing (Zhong et al. 2017): one rectangle of 2-25% of the area, aspect 0.3-3.3, noise-filled.
        u = tf.random.stateless_uniform([b, 6], s_erase)
        area = (0.02 + 0.23 * u[:, 0]) * h * w
        aspect = tf.exp(tf.math.log(0.3) + (tf.math.log(3.3) - tf.math.log(0.3)) * u[:, 1])
        eh = tf.minimum(tf.sqrt(area * aspect), float(h))
        ew = tf.minimum(tf.sqrt(area / aspect), float(w))
        top = u[:, 2] * (h - eh)
        left = u[:, 3] * (w - ew)
        rows = tf.range(h, dtype=tf.float32)[None, :, None]
        cols = tf.range(w, dtype=tf.float32)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
                  & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
        apply = (u[:, 4] < cfg.erasing)[:, None, None]
        noise = tf.random.stateless_uniform(tf.shape(x), s_erase + 1, 0.0, 255.0)
        x = tf.where((inside & apply)[..., None], noise, x)
    return x
