"""Every pooling choice, in one registry: how a feature map becomes a vector (and, for scope "all", how a
window inside a backbone is pooled).

A :class:`PoolingKind` carries its name, its words for reports, the global reduction over a feature map
(``(N, H, W, C) -> (N, D)``), the pooled length, and, when it can stand in for a backbone's own pooling
layer (it keeps the map's shape), its windowed form. The layers (:class:`ferlab.models.layers.GlobalPool2D`,
``Pool2D``), :class:`ModelConfig`'s validation, the report's tables and the tests all read this registry:
adding a pooling is one :func:`register_pooling` call. This module imports no deep-learning library (the
report and the command line read it); the ops are imported when a model is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ferlab.registry import Registry


@dataclass(frozen=True)
class PoolingKind:
    name: str
    title: str  # "average pooling": table captions and headings
    reduce: Callable  # (x (N, H, W, C), keepdims) -> (N, D), or (N, 1, 1, C) with keepdims
    output_dim: Callable[[int, int, int], int]  # pooled length of an (H, W, C) map
    window: Callable | None = None  # (x, pool_size, strides, padding) -> pooled map; None: not for scope "all"
    paper_table: int | None = None  # the study's table for this pooling (Tables 1-4), if it has one

    @property
    def local(self) -> bool:
        """Whether it keeps a map's shape, so it can replace a pooling layer inside a backbone."""
        return self.window is not None


POOLINGS: Registry[PoolingKind] = Registry("pooling", "pooling")


def register_pooling(kind: PoolingKind) -> PoolingKind:
    return POOLINGS.register(kind.name, kind)


def get_pooling(name: str) -> PoolingKind:
    return POOLINGS.get(name)


def list_poolings(local: bool | None = None) -> tuple[str, ...]:
    """Registered names in registry order; ``local=True``: only those that work with pooling scope "all"."""
    return tuple(k.name for k in POOLINGS if local is None or k.local == local)


def _channels(h: int, w: int, c: int) -> int:
    return c


def _flatten(x, keepdims=False):
    from keras import ops

    return ops.reshape(x, (-1, math.prod(x.shape[1:])))


def _mean(x, keepdims=False):
    from keras import ops

    return ops.mean(x, axis=(1, 2), keepdims=keepdims)


def _max(x, keepdims=False):
    from keras import ops

    return ops.max(x, axis=(1, 2), keepdims=keepdims)


def _min(x, keepdims=False):
    from keras import ops

    return ops.min(x, axis=(1, 2), keepdims=keepdims)


def _avgmax(x, keepdims=False):
    from keras import ops

    return ops.concatenate([ops.mean(x, axis=(1, 2)), ops.max(x, axis=(1, 2))], axis=-1)


def _avg_window(x, pool_size, strides, padding):
    from keras import ops

    return ops.average_pool(x, pool_size, strides, padding)


def _max_window(x, pool_size, strides, padding):
    from keras import ops

    return ops.max_pool(x, pool_size, strides, padding)


def _min_window(x, pool_size, strides, padding):
    from keras import ops

    return -ops.max_pool(-x, pool_size, strides, padding)  # no min-pool op exists; this exports as one max-pool


GEM_P = 3.0  # generalized-mean exponent: 1 is average pooling, large values approach max pooling


def _gem(x, keepdims=False):
    """Generalized-mean (GeM) pooling, (mean x^p)^(1/p) per channel (Radenovic et al., 2018), with p = 3.

    Inputs are clipped at a small positive floor: x^p needs x >= 0, and most backbones end in a ReLU (zero
    floor) but MobileNetV3 ends in hard-swish, whose outputs dip slightly below 0.
    """
    from keras import ops

    powered = ops.power(ops.maximum(x, 1e-6), GEM_P)
    return ops.power(ops.mean(powered, axis=(1, 2), keepdims=keepdims), 1.0 / GEM_P)


register_pooling(PoolingKind("none", "no pooling", _flatten, lambda h, w, c: h * w * c, paper_table=1))
register_pooling(PoolingKind("min", "min pooling", _min, _channels, _min_window, paper_table=4))
register_pooling(PoolingKind("avg", "average pooling", _mean, _channels, _avg_window, paper_table=3))
register_pooling(PoolingKind("max", "max pooling", _max, _channels, _max_window, paper_table=2))
register_pooling(PoolingKind("avgmax", "average + max pooling", _avgmax, lambda h, w, c: 2 * c))
register_pooling(PoolingKind("gem", "generalized-mean pooling (p = 3)", _gem, _channels))
