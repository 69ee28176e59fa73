"""Model facts for reports: size, parameters, FLOPs, pooled features and how many of them are zero."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import keras
import numpy as np

from ferlab.errors import FerlabError
from ferlab.models.config import ModelConfig, as_model_config
from ferlab.models.layers import GlobalPool2D


def model_facts(model: keras.Model, config: ModelConfig | dict) -> dict:
    """Parameters, saved size, FLOPs per image and pooled feature length of a built model.

    - ``size_mb``: the ``.keras`` file ``model.save`` writes, in MB of 10^6 bytes (the unit Keras's
      applications table uses); no optimizer state is saved for an uncompiled model.
    - ``flops``: 2 x the multiply-accumulates of every convolution (plain, depthwise, separable) and dense
      layer at the configured input size, counted analytically from the layers' output shapes. BatchNorm,
      activations, pooling, additions and the in-graph resize are left out (about 1-2% for these nets),
      so numbers are exact, deterministic and comparable across backbones.
    """
    cfg = as_model_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        size = path.stat().st_size
    pool = _find_pool(model)
    return {
        "params_total": int(model.count_params()),
        "params_trainable": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "size_mb": round(size / 1e6, 2),  # the config JSON varies by ~1 kB between saves (object ids)
        "flops": count_flops(model),
        "input_size": cfg.input_size,
        "pooled_dim": pool.output_dim(tuple(pool.input.shape[1:])),
    }


def pooled_features(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The vector the classifier sees (the "pool" layer's output) for raw face ``images``.

    Works on ``build_model`` models and on ``head(extractor(x))`` compositions: it runs the model's
    top-level chain of layers up to the one named "pool", descending into nested models that hold it.
    """
    out = []
    for start in range(0, len(images), batch_size):
        batch = keras.ops.convert_to_tensor(np.asarray(images[start:start + batch_size], np.float32))
        out.append(keras.ops.convert_to_numpy(_run_to_pool(model, batch)))
    return np.concatenate(out)


def zero_feature_fraction(model: keras.Model, images: np.ndarray) -> float:
    """Fraction of pooled features that are exactly zero.

    Backbones ending in ReLU make a global minimum mostly zero (one dead position per channel suffices),
    which is why the study's min pooling carries little signal; this number shows how much.
    """
    return float(np.mean(pooled_features(model, images) == 0))


def _run_to_pool(model: keras.Model, x):
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name == "pool":
            return layer(x)
        if isinstance(layer, keras.Model) and _has_pool(layer):
            return _run_to_pool(layer, x)
        x = layer(x, training=False)
    raise FerlabError(f"model {model.name!r} has no layer named 'pool'; pass a model built by ferlab.models")


def _has_pool(model: keras.Model) -> bool:
    return any(layer.name == "pool" or (isinstance(layer, keras.Model) and _has_pool(layer)) for layer in model.layers)


def _find_pool(model: keras.Model) -> GlobalPool2D:
    for layer in model.layers:
        if layer.name == "pool" and isinstance(layer, GlobalPool2D):
            return layer
        if isinstance(layer, keras.Model) and _has_pool(layer):
            return _find_pool(layer)
    raise FerlabError(f"model {model.name!r} has no ferlab pooling layer named 'pool'")


def count_flops(model: keras.Model) -> int:
    """FLOPs per image: 2 x the multiply-accumulates of conv and dense layers (see :func:`model_facts`)."""
    return 2 * _macs(model)


def _macs(model: keras.Model) -> int:
    """Multiply-accumulates per image of the conv and dense layers, nested models included."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _macs(layer)
            continue
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                                  keras.layers.Dense)):
            continue
        in_ch = layer.input.shape[-1]
        out = layer.output.shape
        positions = math.prod(out[1:-1])  # output pixels (or 1 for a dense layer on a vector)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            total += positions * out[-1] * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.SeparableConv2D):
            mid = in_ch * layer.depth_multiplier
            total += positions * mid * (math.prod(layer.kernel_size) + out[-1])
        elif isinstance(layer, keras.layers.Conv2D):
            total += positions * out[-1] * math.prod(layer.kernel_size) * in_ch // layer.groups
        else:
            total += positions * in_ch * out[-1]
    return total
