"""The model layer: backbone registry x pooling x head, preprocessing inside the graph.

A model is ``face (48x48x1, [0, 255]) -> FacePreprocess -> backbone -> GlobalPool2D "pool" ->
[Dropout] -> Dense softmax "classifier"``; see :class:`ModelConfig` for every choice.

Pooling. ferlab owns the pooling (one registry, :mod:`ferlab.models.pooling`: none/min/avg/max/avgmax/gem;
``GlobalPool2D`` for the head, ``Pool2D`` for windows) and never passes a pooling name to
keras.applications. With ``pooling_scope="all"`` every pooling layer inside the backbone (ResNet's stem
max-pool, DenseNet's average-pool transitions, NASNet's cell pools, MobileNetV3's squeeze-excite averages,
fercnn's block pools) becomes the same kind; scope "all" takes only the shape-keeping kinds, since a
flatten or an avg+max concatenation would change the backbone's shapes.

Min pooling on ReLU features. Seven of the eight study backbones (all but MobileNetV3Small, which ends in
hard-swish) and fercnn end in a ReLU, so their final feature maps are non-negative with many exact zeros:
a global minimum per channel is zero as soon as one position of that channel is inactive, so min-pooled
features are mostly zero and carry little signal. :func:`zero_feature_fraction` measures this per model.

The names below load on first use (PEP 562), so reading the pooling or backbone registry or checking a
``ModelConfig`` does not import TensorFlow; :func:`load_model` registers ferlab's layers before loading a file.
"""

from __future__ import annotations

import importlib

_HOME = {
    "BACKBONES": "backbones", "FAMILIES": "backbones", "BackboneSpec": "backbones", "block_of_layers": "backbones", "fercnn": "backbones",
    "get_backbone": "backbones", "list_backbones": "backbones", "preprocess_info": "backbones",
    "register_backbone": "backbones",
    "build_feature_extractor": "build", "build_head": "build", "build_imagenet_classifier": "build",
    "build_model": "build", "load_weights_checked": "build", "replaced_pooling_layers": "build",
    "ModelConfig": "config", "as_model_config": "config",
    "count_flops": "facts", "model_facts": "facts", "pooled_features": "facts", "zero_feature_fraction": "facts",
    "load_model": "files",
    "NORMS": "layers", "FacePreprocess": "layers", "GlobalPool2D": "layers", "Pool2D": "layers",
    "POOLINGS": "pooling", "PoolingKind": "pooling", "get_pooling": "pooling", "list_poolings": "pooling",
    "register_pooling": "pooling",
}

__all__ = sorted(_HOME)
# Modules that read as plain Python (registries, configs): a config check never waits for TensorFlow.
_WITHOUT_TENSORFLOW = {"pooling", "config", "backbones"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'ferlab.models' has no attribute {name!r}")
    if _HOME[name] not in _WITHOUT_TENSORFLOW:
        import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before keras)
    value = getattr(importlib.import_module(f"ferlab.models.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
