"""Every study backbone x pooling, like keras.applications' own tests: builds, shapes, probabilities,
the tensor entering the first convolution, and pooling scope "all". Random weights, 48/96 px only."""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest

from ferlab.face import FACE_SHAPE
from ferlab.models import (
    GlobalPool2D,
    Pool2D,
    build_feature_extractor,
    build_head,
    build_model,
    list_backbones,
    list_poolings,
    model_facts,
    preprocess_info,
    replaced_pooling_layers,
    zero_feature_fraction,
)

pytestmark = pytest.mark.slow

STUDY = ["mobilenetv2", "mobilenetv3small", "nasnetmobile", "resnet50", "resnet50v2", "resnet152v2", "densenet169",
         "densenet201"]
POOLINGS = list_poolings()  # every registered pooling, so a new one is tested here without an edit
FACES = np.random.default_rng(0).integers(0, 256, (2, *FACE_SHAPE), dtype=np.uint8)

# The documented value of the first convolution's input for a constant 0 and 255 face, per channel in the
# order the convolution sees them.
_TF = ([-1.0] * 3, [1.0] * 3)
_CAFFE_BGR = np.array([103.939, 116.779, 123.68])
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
FIRST_CONV = {
    "mobilenetv2": _TF, "nasnetmobile": _TF, "resnet50v2": _TF, "resnet152v2": _TF,
    "mobilenetv3small": _TF,  # [0, 255] in, then its own Rescaling(1/127.5, -1)
    "resnet50": (list(-_CAFFE_BGR), list(255 - _CAFFE_BGR)),
    "densenet169": (list(-_MEAN / _STD), list((1 - _MEAN) / _STD)),
    "densenet201": (list(-_MEAN / _STD), list((1 - _MEAN) / _STD)),
}

# Internal pooling layers per backbone (Keras class -> count), all replaced by pooling scope "all".
INTERNAL_POOLS = {
    "mobilenetv2": {},
    "mobilenetv3small": {"GlobalAveragePooling2D": 9},  # squeeze-excite
    "nasnetmobile": {"MaxPooling2D": 8, "AveragePooling2D": 52},
    "resnet50": {"MaxPooling2D": 1},  # stem
    "resnet50v2": {"MaxPooling2D": 4},  # stem + three 1x1 stride-2 shortcut subsamplers
    "resnet152v2": {"MaxPooling2D": 4},
    "densenet169": {"MaxPooling2D": 1, "AveragePooling2D": 3},  # stem + transitions
    "densenet201": {"MaxPooling2D": 1, "AveragePooling2D": 3},
    "fercnn": {"MaxPooling2D": 4},
    "fercnn-wide": {"MaxPooling2D": 4},
}


def config(backbone: str, **kw) -> dict:
    return {"backbone": backbone, "input_size": 48, "num_classes": 5, "weights": "none", **kw}


@pytest.fixture(scope="module", params=STUDY)
def full_model(request):
    """One full ``build_model`` per backbone at 48 px (avg pooling), shared by the tests below."""
    keras.backend.clear_session()
    yield request.param, build_model(config(request.param))
    keras.backend.clear_session()


def test_full_model_maps_faces_to_probabilities(full_model):
    backbone, model = full_model
    probs = keras.ops.convert_to_numpy(model(FACES))
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    facts = model_facts(model, config(backbone))
    assert facts["params_total"] == model.count_params() and facts["flops"] > 0 and facts["size_mb"] > 0
    print(f"{backbone} at 48 px: {facts}")


def test_first_convolution_sees_the_documented_range(full_model):
    backbone, model = full_model
    black, white = (_first_conv_centre(model, np.full((1, *FACE_SHAPE), v, np.uint8)) for v in (0, 255))
    np.testing.assert_allclose(black, FIRST_CONV[backbone][0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(white, FIRST_CONV[backbone][1], rtol=1e-4, atol=1e-4)
    info = preprocess_info(backbone)
    np.testing.assert_allclose([info["black"], info["white"]], FIRST_CONV[backbone], rtol=1e-4, atol=1e-4)


def test_mobilenetv3_paper_preprocessing_collapses_its_first_conv_input():
    """The study's x/255 before MobileNetV3's own x/127.5 - 1: inputs span 0.008 instead of 2."""
    spreads = {}
    for mode in ("native", "paper"):
        model = build_model(config("mobilenetv3small", preprocessing=mode))
        lo, hi = (_first_conv_centre(model, np.full((1, *FACE_SHAPE), v, np.uint8)) for v in (0, 255))
        spreads[mode] = float(np.max(hi) - np.min(lo))
    print(f"MobileNetV3Small first-conv input spread, black to white face: {spreads}")
    assert spreads["native"] == pytest.approx(2.0, abs=1e-4)
    assert spreads["paper"] == pytest.approx(2 / 255, abs=1e-5)


@pytest.mark.parametrize("size", [48, 96])
@pytest.mark.parametrize("backbone", STUDY)
def test_every_pooling_head_on_a_shared_extractor(backbone, size):
    """Backbone x pooling at 48 and 96 px: one extractor build per backbone and size, five heads on it."""
    keras.backend.clear_session()
    extractor = build_feature_extractor(config(backbone, input_size=size))
    features = extractor(FACES, training=False)
    shape = tuple(extractor.output.shape[1:])
    assert features.shape == (2, *shape)
    for pooling in POOLINGS:
        head = build_head(config(backbone, input_size=size, pooling=pooling), shape)
        probs = keras.ops.convert_to_numpy(head(features))
        assert probs.shape == (2, 5), pooling
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5, err_msg=pooling)
        assert head.get_layer("pool").output.shape[-1] == head.get_layer("pool").output_dim(shape)


@pytest.mark.parametrize("backbone", list_backbones())  # every registered backbone
def test_scope_all_replaces_every_internal_pooling_layer(backbone):
    keras.backend.clear_session()
    model = build_model(config(backbone, pooling="min", pooling_scope="all"))
    replaced = replaced_pooling_layers(model)
    print(f"{backbone}: {len(replaced)} internal pooling layers -> min: {sorted(replaced)}")
    assert dict(collections.Counter(replaced.values())) == INTERNAL_POOLS[backbone]
    layers = list(_walk(model))
    assert not [layer.name for layer in layers if "Pooling" in type(layer).__name__]  # no Keras pooling left
    assert {layer.kind for layer in layers if isinstance(layer, (Pool2D, GlobalPool2D))} == {"min"}
    probs = keras.ops.convert_to_numpy(model(FACES))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    print(f"{backbone}: min-pooled zero fraction, random weights: {zero_feature_fraction(model, FACES):.3f}")


def _first_conv_centre(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Per-channel value at the centre of the tensor entering the backbone's first convolution (the
    centre avoids the zero padding some stems add before it)."""
    backbone = model.get_layer("backbone")
    conv = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D))
    x = model.get_layer("preprocess")(image)
    seen = keras.ops.convert_to_numpy(keras.Model(backbone.inputs, conv.input)(x))
    return seen[0, seen.shape[1] // 2, seen.shape[2] // 2]


def _walk(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
