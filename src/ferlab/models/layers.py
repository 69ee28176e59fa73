"""ferlab's own Keras layers: in-graph preprocessing and every pooling choice.

They are registered serializable (package "ferlab") when this module is imported, so a saved ``.keras``
model loads with ``safe_mode=True`` (:func:`ferlab.models.load_model` imports it first), and they use plain ops only (cast, bilinear resize,
concat, mul/add, reductions, max-pool) so a model exports to TFLite/ONNX without custom ops. No Lambda
layers: those need ``safe_mode=False`` to load.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ferlab.models.norms import NORMS, Norm  # noqa: F401  (Norm: re-exported, as before)
from ferlab.models.pooling import POOLINGS, get_pooling, list_poolings

@keras.saving.register_keras_serializable(package="ferlab")
class FacePreprocess(keras.layers.Layer):
    """Raw pixels in [0, 255] (uint8 or float, 1 or 3 channels) -> the backbone's expected input.

    In the graph, in order: cast to float, bilinear resize to ``size`` (as ``keras.layers.Resizing``, no
    antialiasing; skipped when the input already has that size), grey -> RGB by repeating the channel
    (when ``channels`` is 3), then the ``norm`` from :data:`NORMS`. Keeping this inside the model means a
    saved or exported model takes the same raw faces the data layer produces.
    """

    def __init__(self, size: int, norm: str, channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        spec = NORMS[norm]
        if channels == 1 and (len(set(spec.scale)) > 1 or len(set(spec.offset)) > 1 or spec.bgr):
            raise ValueError(f"norm {norm!r} is per-channel RGB; it needs channels=3")
        self.size, self.norm, self.channels = int(size), norm, channels
        self._scale = np.asarray(spec.scale[:channels], np.float32)
        self._offset = np.asarray(spec.offset[:channels], np.float32)

    def build(self, input_shape):
        if input_shape[-1] not in (1, self.channels):
            raise ValueError(f"FacePreprocess takes 1 or {self.channels} channels, got {input_shape[-1]}")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if x.shape[1] != self.size or x.shape[2] != self.size:
            x = ops.image.resize(x, (self.size, self.size), interpolation="bilinear")
        if x.shape[-1] == 1 and self.channels == 3:
            x = ops.concatenate([x, x, x], axis=-1)
        if NORMS[self.norm].bgr:
            x = ops.flip(x, axis=-1)
        return x * ops.cast(self._scale, x.dtype) + ops.cast(self._offset, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "norm": self.norm, "channels": self.channels}


@keras.saving.register_keras_serializable(package="ferlab")
class GlobalPool2D(keras.layers.Layer):
    """Every global pooling choice in one layer (timm's SelectAdaptivePool2d idea), read from
    :data:`ferlab.models.pooling.POOLINGS`.

    ``none`` flattens the feature map, ``avg``/``max``/``min``/``gem`` reduce each channel over H and W,
    ``avgmax`` concatenates avg and max. ``keepdims`` (shape-keeping kinds only) keeps a 1x1 map, as the squeeze-excite
    pools inside MobileNetV3 need when scope "all" replaces them. ``replaces`` records the Keras layer class
    this instance replaced (empty for the head's pool), so the replacement is visible in a saved model.
    """

    def __init__(self, kind: str, keepdims: bool = False, replaces: str = "", **kwargs):
        super().__init__(**kwargs)
        if kind not in POOLINGS:
            raise ValueError(f"kind must be one of {', '.join(list_poolings())}, got {kind!r}")
        if keepdims and not get_pooling(kind).local:
            raise ValueError(f"keepdims needs kind in {list_poolings(local=True)}, got {kind!r}")
        self.kind, self.keepdims, self.replaces = kind, bool(keepdims), replaces

    def output_dim(self, feature_shape: tuple[int, int, int]) -> int:
        """Length of the pooled vector for an (H, W, C) feature map."""
        return get_pooling(self.kind).output_dim(*feature_shape)

    def call(self, x):
        return get_pooling(self.kind).reduce(x, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], 1, 1, input_shape[-1])
        return (input_shape[0], self.output_dim(tuple(input_shape[1:])))

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "keepdims": self.keepdims, "replaces": self.replaces}


@keras.saving.register_keras_serializable(package="ferlab")
class Pool2D(keras.layers.Layer):
    """Local (windowed) pooling of any shape-keeping kind (avg, max, min, ...).

    Used by pooling scope "all" in place of a backbone's MaxPooling2D/AveragePooling2D, with the same
    ``pool_size``, ``strides`` and ``padding``; ``replaces`` names the class it replaced.
    """

    def __init__(self, kind: str, pool_size=(2, 2), strides=None, padding: str = "valid", replaces: str = "",
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in list_poolings(local=True):
            raise ValueError(f"kind must be one of {', '.join(list_poolings(local=True))}, got {kind!r}")
        self.kind, self.replaces, self.padding = kind, replaces, padding
        self.pool_size = tuple(pool_size) if isinstance(pool_size, (tuple, list)) else (pool_size, pool_size)
        strides = self.pool_size if strides is None else strides
        self.strides = tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)

    def call(self, x):
        return get_pooling(self.kind).window(x, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        def side(n, k, s):
            if n is None:
                return None
            return math.ceil(n / s) if self.padding == "same" else (n - k) // s + 1

        h, w = (side(n, k, s) for n, k, s in zip(input_shape[1:3], self.pool_size, self.strides))
        return (input_shape[0], h, w, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "replaces": self.replaces}


@keras.saving.register_keras_serializable(package="ferlab")
class MergeClasses(keras.layers.Layer):
    """Class probabilities -> probabilities of coarser classes: ``p @ M``, renormalised to sum to 1.

    ``groups[j]`` lists the input class indices merged into output class ``j``; an input class in no group
    is dropped (its probability removed before renormalising: the model's belief *given* that the face
    is not of a dropped class). This is how a 7-class FER2013 model answers the study's paper5 protocol
    (fear + surprise -> anxious, disgust dropped) with no retraining. Plain matmul, sum and divide: exports
    to LiteRT and ONNX as they are.
    """

    def __init__(self, groups: list[list[int]], num_inputs: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = [list(map(int, g)) for g in groups]
        self.num_inputs = int(num_inputs)
        matrix = np.zeros((self.num_inputs, len(self.groups)), np.float32)
        for j, group in enumerate(self.groups):
            matrix[group, j] = 1.0
        if (matrix.sum(1) > 1).any():
            raise ValueError(f"groups {self.groups}: an input class may be merged into one output class only")
        self._matrix = matrix

    def call(self, probs):
        merged = ops.matmul(ops.cast(probs, "float32"), ops.convert_to_tensor(self._matrix))
        return merged / ops.maximum(ops.sum(merged, axis=-1, keepdims=True), 1e-12)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.groups))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "num_inputs": self.num_inputs}


@keras.saving.register_keras_serializable(package="ferlab")
class Mirror(keras.layers.Layer):
    """Faces (N, H, W, C) flipped left-right: the second view of flip test-time augmentation in the graph
    (:func:`ferlab.zoo.build.with_flip_average`). One reverse op (LiteRT REVERSE_V2, an ONNX slice)."""

    def call(self, faces):
        return ops.flip(faces, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape
