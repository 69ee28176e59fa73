"""Building models from a ModelConfig: face -> preprocess -> backbone -> pool -> dropout -> classifier.

Every model takes raw 48x48x1 faces (uint8 or float in [0, 255]); the backbone is a nested Keras model
named "backbone", the head's layers are "pool", "dropout" (when > 0) and "classifier". The frozen fast
path trains heads on cached feature maps: ``build_head(cfg, shape)(build_feature_extractor(cfg)(x))``
computes the same function as ``build_model(cfg)``.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
from pathlib import Path

import h5py
import keras

from ferlab.errors import FerlabError
from ferlab.face import FACE_SHAPE
from ferlab.models.backbones import BackboneSpec, block_of_layers, get_backbone
from ferlab.models.config import ModelConfig, as_model_config
from ferlab.models.layers import FacePreprocess, GlobalPool2D, Pool2D


def build_model(config: ModelConfig | dict) -> keras.Model:
    """The full classifier: raw faces -> class probabilities."""
    cfg = as_model_config(config)
    faces = keras.Input(FACE_SHAPE, name="face")
    features = _backbone_output(cfg, faces)
    return keras.Model(faces, _head(cfg, features), name=f"{cfg.backbone}_{cfg.pooling}")


def build_feature_extractor(config: ModelConfig | dict) -> keras.Model:
    """Raw faces -> the backbone's final feature map (before pooling), for caching features once."""
    cfg = as_model_config(config)
    faces = keras.Input(FACE_SHAPE, name="face")
    return keras.Model(faces, _backbone_output(cfg, faces), name=f"{cfg.backbone}_extractor")


def build_head(config: ModelConfig | dict, feature_shape: tuple[int, ...]) -> keras.Model:
    """Feature map (H, W, C) -> class probabilities: pool -> optional dropout -> dense softmax."""
    cfg = as_model_config(config)
    features = keras.Input(tuple(feature_shape), name="features")
    return keras.Model(features, _head(cfg, features), name=f"{cfg.backbone}_{cfg.pooling}_head")


def build_imagenet_classifier(weights: str | os.PathLike = "imagenet", backbone: str = "mobilenetv2",
                              input_size: int = 224) -> keras.Model:
    """The backbone with its 1000-class ImageNet top behind ferlab's in-graph preprocessing.

    Takes raw RGB pixels of any size ([0, 255]; resized in the graph to ``input_size``). It exists to check
    that a weights file and the family's preprocessing agree: a photo must come out as its ImageNet class.
    ``weights`` is "imagenet" or a top-included ``.weights.h5`` file.
    """
    spec = get_backbone(backbone)
    if spec.imagenet_file is None:
        raise FerlabError(f"backbone: {spec.name} has no ImageNet classifier; choose an ImageNet backbone")
    if weights == "imagenet":
        net = _download_guarded(spec, input_size, include_top=True)
    else:
        net = spec.build(input_size, None, include_top=True, name="backbone")
        load_weights_checked(net, weights, f"{spec.name} with its ImageNet top")
    image = keras.Input((None, None, 3), name="image")
    x = FacePreprocess(input_size, spec.family_spec.norm, 3, name="preprocess")(image)
    return keras.Model(image, net(x), name=f"{spec.name}_imagenet")


def replaced_pooling_layers(model: keras.Model) -> dict[str, str]:
    """Layer name -> the Keras pooling class it replaced, for every layer pooling scope "all" swapped."""
    found = {}
    for layer in _walk(model):
        if isinstance(layer, (Pool2D, GlobalPool2D)) and layer.replaces:
            found[layer.name] = layer.replaces
    return found


def load_weights_checked(model: keras.Model, path: str | os.PathLike, what: str) -> None:
    """Load a ``.weights.h5`` file into ``model`` after checking its layer layout and variable shapes.

    Keras matches weights by position and class (not by layer name), so a file from another architecture
    may fail deep inside loading or, worse, half-load. Comparing the file's tree with the one ``model``
    itself would save names the first layer, in model order, whose variables differ.
    """
    path = Path(path)
    if not path.is_file():
        raise FerlabError(f"weights: file not found: {path}")
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "expected.weights.h5"
        model.save_weights(ref)
        expected = _h5_layout(ref)
    try:
        found = _h5_layout(path)
    except OSError as exc:
        raise FerlabError(f"weights: {path} is not a readable .weights.h5 file ({exc})") from None
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    for key, (name, shapes) in sorted(expected.items(), key=lambda kv: order.get(kv[1][0], len(order))):
        got = found.get(key, (None, None if shapes else []))[1]
        if got != shapes:
            have = "nothing" if got is None else _shapes(got)
            raise FerlabError(f"weights: {path.name} does not fit {what}: first mismatching layer {name!r} "
                              f"({key}) needs {_shapes(shapes)}, the file has {have}; pass a file saved from "
                              f"this backbone (include_top=False) or weights 'imagenet'/'none'")
    extra = [found[k][0] or k for k, v in found.items() if k not in expected and v[1]]
    if extra:
        raise FerlabError(f"weights: {path.name} does not fit {what}: first mismatching layer {extra[0]!r} is in "
                          f"the file but not in the model; pass a file saved from this backbone (include_top=False)")
    model.load_weights(path)


# --- internals -------------------------------------------------------------------------------------


def _backbone_output(cfg: ModelConfig, faces):
    spec = get_backbone(cfg.backbone)
    norm = spec.family_spec.norm if cfg.preprocessing == "native" else "unit"
    x = FacePreprocess(cfg.input_size, norm, spec.family_spec.channels, name="preprocess")(faces)
    backbone = _backbone(cfg, spec)
    # Frozen: BatchNorm must stay in inference mode even while the head trains (Keras transfer guide).
    return backbone(x, training=False) if cfg.mode == "frozen" else backbone(x)


def _head(cfg: ModelConfig, features):
    x = GlobalPool2D(cfg.pooling, name="pool")(features)
    if cfg.dropout > 0:
        x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
    # float32 output keeps softmax stable under a mixed-precision policy.
    return keras.layers.Dense(cfg.num_classes, activation="softmax", dtype="float32", name="classifier")(x)


def _backbone(cfg: ModelConfig, spec: BackboneSpec) -> keras.Model:
    """The bare backbone with weights, pooling replacement, BatchNorm momentum and trainability applied."""
    if cfg.weights == "imagenet":
        net = _download_guarded(spec, cfg.input_size, include_top=False)
    else:
        net = spec.build(cfg.input_size, None, include_top=False, name="backbone")
        if cfg.weights != "none":
            load_weights_checked(net, cfg.weights, f"{spec.name} (include_top=False)")
    if cfg.pooling_scope == "all":
        net = _replace_pooling(net, cfg.pooling)
    for layer in _walk(net):
        if cfg.bn_momentum is not None and isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = cfg.bn_momentum
    _set_trainable(net, spec, cfg)
    return net


def _download_guarded(spec: BackboneSpec, input_size: int, include_top: bool) -> keras.Model:
    """Build with Keras's ImageNet weights; offline, say which file to put where instead of a traceback."""
    try:
        return spec.build(input_size, "imagenet", include_top=include_top, name="backbone")
    except Exception as exc:
        if not (isinstance(exc, (ConnectionError, TimeoutError, urllib.error.URLError))
                or "URL fetch failure" in str(exc)):
            raise
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
        filename = "the file that URL names" if include_top else spec.imagenet_file(input_size)
        reason = str(exc).splitlines()[0]
        raise FerlabError(f"weights: cannot download {spec.name}'s ImageNet weights ({reason}); offline, put "
                          f"{filename} into {cache}/ or pass weights=<path to a .weights.h5 file>") from None


def _replace_pooling(net: keras.Model, kind: str) -> keras.Model:
    """Clone ``net`` with every pooling layer replaced by ``kind`` (same window, strides, padding)."""
    local = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    global_ = (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)

    def clone(layer):
        if isinstance(layer, local):
            return Pool2D(kind, layer.pool_size, layer.strides, layer.padding, replaces=type(layer).__name__,
                          name=layer.name)
        if isinstance(layer, global_):
            return GlobalPool2D(kind, keepdims=layer.keepdims, replaces=type(layer).__name__, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    replaced = keras.models.clone_model(net, clone_function=clone)
    replaced.set_weights(net.get_weights())  # pooling layers hold no weights: the order is unchanged
    left = [layer.name for layer in replaced.layers if "Pooling" in type(layer).__name__]
    if left:
        raise FerlabError(f"pooling_scope: cannot replace pooling layers {left} of this backbone; use scope 'head'")
    return replaced


def _set_trainable(net: keras.Model, spec: BackboneSpec, cfg: ModelConfig) -> None:
    net.trainable = cfg.mode != "frozen"
    if cfg.mode != "partial":
        return
    blocks = block_of_layers(spec, net)
    names = list(dict.fromkeys(blocks[layer.name] for layer in net.layers if layer.weights))
    if cfg.trainable_blocks > len(names):
        raise FerlabError(f"trainable_blocks: {spec.name} has {len(names)} blocks; choose 1..{len(names)}")
    top = set(names[-cfg.trainable_blocks:])
    for layer in net.layers:
        layer.trainable = blocks[layer.name] in top and not isinstance(layer, keras.layers.BatchNormalization)


def _walk(model: keras.Model):
    """Every layer of ``model``, descending into nested models."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _h5_layout(path: Path) -> dict[str, tuple[str | None, list[tuple[int, ...]]]]:
    """``.weights.h5`` tree: layer group -> (the layer's name as saved, its variable shapes in order)."""
    layout = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and (name == "vars" or name.endswith("/vars")):
                shapes = [tuple(obj[k].shape) for k in sorted(obj.keys(), key=int)]
                layout[name.removesuffix("/vars")] = (obj.attrs.get("name"), shapes)
        f.visititems(visit)
    return layout


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return "no variables" if not shapes else ", ".join(str(s) for s in shapes)
