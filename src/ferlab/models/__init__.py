"""The model layer: backbone registry x pooling x head, preprocessing inside the graph.

A model is ``face (48x48x1, [0, 255]) -> FacePreprocess -> backbone -> GlobalPool2D "pool" ->
[Dropout] -> Dense softmax "classifier"``; see :class:`ModelConfig` for every choice.

Pooling. ferlab owns the pooling (``GlobalPool2D``: none/avg/max/min/avgmax; ``Pool2D`` for windows) and
never passes a pooling name to keras.applications. With ``pooling_scope="all"`` every pooling layer inside
the backbone (ResNet's stem max-pool, DenseNet's average-pool transitions, NASNet's cell pools,
MobileNetV3's squeeze-excite averages, fercnn's block pools) becomes the same kind; scope "all" takes only
avg, max or min, since a flatten or an avg+max concatenation would change the backbone's shapes.

Min pooling on ReLU features. Seven of the eight study backbones (all but MobileNetV3Small, which ends in
hard-swish) and fercnn end in a ReLU, so their final feature maps are non-negative with many exact zeros:
a global minimum per channel is zero as soon as one position of that channel is inactive, so min-pooled
features are mostly zero and carry little signal. :func:`zero_feature_fraction` measures this per model.

Importing this package registers ferlab's layers with Keras, which loading a saved model needs.
"""

import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before keras)

from ferlab.models.backbones import (
    FAMILIES,
    BackboneSpec,
    block_of_layers,
    fercnn,
    get_backbone,
    list_backbones,
    preprocess_info,
    register_backbone,
)
from ferlab.models.build import (
    FACE_SHAPE,
    build_feature_extractor,
    build_head,
    build_imagenet_classifier,
    build_model,
    load_weights_checked,
    replaced_pooling_layers,
)
from ferlab.models.config import ModelConfig, as_model_config
from ferlab.models.facts import count_flops, model_facts, pooled_features, zero_feature_fraction
from ferlab.models.layers import NORMS, FacePreprocess, GlobalPool2D, Pool2D

__all__ = [
    "FACE_SHAPE", "FAMILIES", "NORMS", "BackboneSpec", "FacePreprocess", "GlobalPool2D", "ModelConfig", "Pool2D",
    "as_model_config", "block_of_layers", "count_flops", "build_feature_extractor", "build_head",
    "build_imagenet_classifier", "build_model", "fercnn", "get_backbone", "list_backbones", "load_weights_checked",
    "model_facts", "pooled_features", "preprocess_info", "register_backbone", "replaced_pooling_layers",
    "zero_feature_fraction",
]
