"""The model layer on small or fast models: config errors, pooling maths, preprocessing, weights files,
training modes, save/load, facts. The per-backbone grid lives in test_models_backbones.py."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from ferlab.errors import FerlabError
from ferlab.face import FACE_SHAPE
from ferlab.models import (
    GlobalPool2D,
    ModelConfig,
    Pool2D,
    build_feature_extractor,
    build_head,
    build_imagenet_classifier,
    build_model,
    count_flops,
    list_backbones,
    list_poolings,
    model_facts,
    pooled_features,
    preprocess_info,
    zero_feature_fraction,
)

WEIGHTS = Path(os.environ.get("FERLAB_SHARED", Path(__file__).resolve().parents[1].parent / "shared")) / "weights"
NOTOP = WEIGHTS / "mobilenet_v2_1.0_224_tvport_notop.weights.h5"
TOP = WEIGHTS / "mobilenet_v2_1.0_224_tvport.weights.h5"
POOLINGS = list_poolings()  # every registered pooling, so a new one is tested here without an edit
STUDY = ["mobilenetv2", "mobilenetv3small", "nasnetmobile", "resnet50", "resnet50v2", "resnet152v2", "densenet169",
         "densenet201"]


def shared(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared weights file not found at {path}: put ../shared beside the repo or set FERLAB_SHARED")
    return path


def faces(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *FACE_SHAPE), dtype=np.uint8)


def cfg(**kw) -> dict:
    return {"backbone": "fercnn", "num_classes": 5, **kw}


# --- registry and config ---------------------------------------------------------------------------


def test_registry_holds_the_study_backbones_and_fercnn():
    """The study's eight and fercnn are there; another registered backbone does not fail this."""
    names = list_backbones()
    assert [n for n in names if n in STUDY] == STUDY  # all eight, in the study's order
    assert {"fercnn", "fercnn-wide"} <= set(names)
    assert ModelConfig(backbone="MobileNetV2").backbone == "mobilenetv2"
    assert ModelConfig(backbone="resnet50").input_size == 224
    assert ModelConfig(backbone="fercnn").input_size == 48


def test_a_backbone_name_is_registered_once():
    """The backbones are a :class:`ferlab.registry.Registry`: a second entry under a name is refused, and an
    unknown name is a one-line error naming the choices."""
    from ferlab.models import get_backbone, register_backbone

    before = list_backbones()
    with pytest.raises(ValueError, match="backbone 'fercnn' is registered twice"):
        register_backbone("FERCNN", lambda *a, **k: None, "fercnn")
    assert list_backbones() == before and get_backbone("FerCNN").name == "fercnn"
    with pytest.raises(FerlabError, match="backbone: unknown backbone 'vgg16'; choose mobilenetv2, "):
        get_backbone("vgg16")


@pytest.mark.parametrize(("raw", "message"), [
    ({"backbone": "vgg16"}, "unknown backbone 'vgg16'; choose one of mobilenetv2, mobilenetv3small"),
    (cfg(pooling="median"), "unknown pooling 'median'; choose none, min, avg, max, avgmax or gem"),
    (cfg(mode="train"), "'finetune', 'frozen' or 'partial'"),
    (cfg(pooling_scope="body"), "'head' or 'all'"),
    ({"backbone": "resnet50", "input_size": 31}, "input_size 31 is too small for resnet50: use input_size >= 32"),
    ({"backbone": "nasnetmobile", "input_size": 16}, "use input_size >= 32"),
    (cfg(input_size=4), "use input_size >= 8"),
    (cfg(pooling="avgmax", pooling_scope="all"), "pooling_scope 'all' needs pooling in min, avg, max"),
    (cfg(weights="imagenet"), "fercnn has no ImageNet weights"),
    (cfg(weights="model.h5"), "a path to a .weights.h5 file"),
    (cfg(dropout=1.0), "dropout"),
    (cfg(colour=True), "colour: unknown key"),
])
def test_bad_config_is_one_line_error(raw, message):
    with pytest.raises(FerlabError, match="^model: ") as err:
        build_model(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_too_many_trainable_blocks_names_the_block_count():
    with pytest.raises(FerlabError, match=r"trainable_blocks: fercnn has 4 blocks; choose 1..4"):
        build_model(cfg(mode="partial", trainable_blocks=5))


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined")
def test_offline_imagenet_download_says_which_file_to_put_where(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin, **kw):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(FerlabError) as err:
        build_model({"backbone": "mobilenetv3small", "weights": "imagenet", "input_size": 48})
    msg = str(err.value)
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in msg and ".keras/models" in msg
    assert ".weights.h5" in msg


# --- pooling ---------------------------------------------------------------------------------------


def test_global_pooling_matches_numpy():
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    expect = {"none": x.reshape(2, -1), "min": x.min(axis=(1, 2)), "avg": x.mean(axis=(1, 2)),
              "max": x.max(axis=(1, 2)), "avgmax": np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], -1),
              "gem": (np.maximum(x, 1e-6) ** 3).mean(axis=(1, 2)) ** (1 / 3)}
    assert set(expect) == set(POOLINGS), "give every registered pooling its numpy reference here"
    for kind, want in expect.items():
        layer = GlobalPool2D(kind)
        got = keras.ops.convert_to_numpy(layer(x))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=kind)
        assert layer.output_dim((3, 4, 5)) == want.shape[1]
    keep = keras.ops.convert_to_numpy(GlobalPool2D("min", keepdims=True)(x))
    np.testing.assert_array_equal(keep, x.min(axis=(1, 2), keepdims=True))


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_windowed_min_pooling_is_minus_maxpool_of_minus(padding):
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(Pool2D("min", 3, 2, padding)(x))
    if padding == "valid":
        want = np.stack([[x[0, i:i + 3, j:j + 3].min(axis=(0, 1)) for j in (0, 2)] for i in (0, 2)])[None]
    else:  # TF "same": pad 1 on each side for 5 -> 3 with window 3, stride 2
        pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=np.inf)
        want = np.stack([[pad[0, i:i + 3, j:j + 3].min(axis=(0, 1)) for j in (0, 2, 4)] for i in (0, 2, 4)])[None]
    np.testing.assert_array_equal(got, want)
    avg = keras.ops.convert_to_numpy(Pool2D("avg", 2)(x))
    np.testing.assert_allclose(avg[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)), rtol=1e-6)


def test_extractor_then_head_equals_the_full_model():
    config = cfg(pooling="avgmax", dropout=0.3)
    model = build_model(config)
    extractor = build_feature_extractor(config)
    head = build_head(config, extractor.output.shape[1:])
    extractor.get_layer("backbone").set_weights(model.get_layer("backbone").get_weights())
    head.get_layer("classifier").set_weights(model.get_layer("classifier").get_weights())
    x = faces(4)
    np.testing.assert_allclose(head.predict(extractor.predict(x, verbose=0), verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in model.layers] == ["face", "preprocess", "backbone", "pool", "dropout", "classifier"]


def test_zero_feature_fraction_on_flat_and_composed_models():
    config = cfg(pooling="min")
    model = build_model(config)
    x = faces(6)
    pooled = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("pool").output)(x))
    assert zero_feature_fraction(model, x) == pytest.approx(np.mean(pooled == 0))
    extractor = build_feature_extractor(config)
    head = build_head(config, extractor.output.shape[1:])
    extractor.get_layer("backbone").set_weights(model.get_layer("backbone").get_weights())
    face = keras.Input(FACE_SHAPE)
    composed = keras.Model(face, head(extractor(face, training=False)))
    np.testing.assert_allclose(pooled_features(composed, x), pooled, atol=1e-6)
    # fercnn ends in ReLU: min pooling is mostly exact zeros, avg pooling almost never.
    print(f"fercnn min-pooled zero fraction on random faces: {zero_feature_fraction(model, x):.3f}")
    assert zero_feature_fraction(model, x) > 0.5


# --- preprocessing ---------------------------------------------------------------------------------


def test_preprocess_info_documents_first_conv_ranges():
    """Native vs the study's x/255: MobileNetV3's own rescaling collapses the latter to a ~0.008 spread."""
    native = preprocess_info("mobilenetv3small")
    paper = preprocess_info("mobilenetv3small", "paper")
    spread = paper["range"][1] - paper["range"][0]
    print(f"MobileNetV3Small first-conv input spread: native {native['range'][1] - native['range'][0]:.4f}, "
          f"paper {spread:.5f}")
    assert native["range"] == (-1.0, 1.0)
    assert spread == pytest.approx(2 / 255, abs=1e-5)
    fer = preprocess_info("fercnn")
    assert (fer["black"], fer["white"], fer["channels"]) == ([-1.0], [1.0], 1)


def test_preprocess_layer_resizes_repeats_and_accepts_uint8_and_float():
    model = build_model({"backbone": "mobilenetv2", "input_size": 64, "weights": "none"})
    pre = model.get_layer("preprocess")
    x = faces(2)
    a = keras.ops.convert_to_numpy(pre(x))
    b = keras.ops.convert_to_numpy(pre(x.astype(np.float32)))
    assert a.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[..., 0], a[..., 2])
    assert -1 <= a.min() and a.max() <= 1


# --- shared ImageNet weights -----------------------------------------------------------------------


def test_mobilenetv2_notop_file_loads_exactly():
    path = shared(NOTOP)
    model = build_model({"backbone": "mobilenetv2", "weights": str(path), "input_size": 96, "num_classes": 5})
    backbone = model.get_layer("backbone")
    checked = 0
    with h5py.File(path, "r") as f:
        def compare(name, group):
            nonlocal checked
            if isinstance(group, h5py.Group) and name.endswith("/vars") and len(group):
                layer = backbone.get_layer(group.attrs["name"])
                for i, w in enumerate(layer.weights):
                    np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), group[str(i)][()])
                checked += 1
        f.visititems(compare)
    assert checked == sum(1 for layer in backbone.layers if layer.weights) == 104


def test_mobilenetv2_top_file_classifies_chelsea_as_a_cat():
    """The real-weights path and the in-graph preprocessing agree: ImageNet cats are classes 281-285."""
    skimage_data = pytest.importorskip("skimage.data")
    model = build_imagenet_classifier(shared(TOP), "mobilenetv2")
    probs = model.predict(skimage_data.chelsea()[None], verbose=0)[0]
    top5 = np.argsort(probs)[::-1][:5]
    print(f"chelsea top-5 ImageNet classes {top5.tolist()}, p={probs[top5].round(3).tolist()}")
    assert 281 <= top5[0] <= 285
    # Known count for MobileNetV2 1.0 at 224 px: ~300 M multiply-adds.
    assert count_flops(model) / 2 == pytest.approx(300e6, rel=0.05)


def test_mismatched_weights_file_names_the_first_mismatching_layer(tmp_path):
    path = shared(NOTOP)
    with pytest.raises(FerlabError, match=r"first mismatching layer 'conv' \(layers/conv2d\) needs \(3, 3, 3, 16\)"):
        build_model({"backbone": "mobilenetv3small", "weights": str(path), "input_size": 48})
    with pytest.raises(FerlabError, match="weights: file not found"):
        build_model(cfg(weights=str(tmp_path / "missing.weights.h5")))


def test_weights_file_round_trip_and_mismatch_without_shared_files(tmp_path):
    source = build_model(cfg())
    path = tmp_path / "fercnn.weights.h5"
    source.get_layer("backbone").save_weights(path)
    loaded = build_model(cfg(weights=str(path), pooling_scope="all", pooling="min"))
    for a, b in zip(source.get_layer("backbone").weights, loaded.get_layer("backbone").weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    with pytest.raises(FerlabError, match="first mismatching layer 'Conv1'"):
        build_model({"backbone": "mobilenetv2", "weights": str(path), "input_size": 48})


# --- training modes --------------------------------------------------------------------------------


def _numpy_weights(layer) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w).copy() for w in layer.weights]


def test_frozen_step_changes_no_backbone_weight_or_batchnorm_statistic():
    model = build_model({"backbone": "mobilenetv2", "input_size": 48, "num_classes": 5, "mode": "frozen",
                         "bn_momentum": 0.5})
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and len(model.trainable_weights) == 2  # classifier kernel + bias
    before, head_before = _numpy_weights(backbone), _numpy_weights(model.get_layer("classifier"))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(faces(8), np.arange(8) % 5, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(before, _numpy_weights(backbone)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, _numpy_weights(model.get_layer("classifier"))))


def test_finetune_step_moves_batchnorm_statistics_with_the_configured_momentum():
    model = build_model(cfg(bn_momentum=0.9))
    bn = model.get_layer("backbone").get_layer("block1_bn1")
    assert bn.momentum == 0.9 and bn.trainable
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(faces(8), np.arange(8) % 5, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(before, keras.ops.convert_to_numpy(bn.moving_mean))


def test_partial_trains_only_the_top_blocks_and_no_batchnorm():
    model = build_model({"backbone": "mobilenetv2", "input_size": 48, "mode": "partial", "trainable_blocks": 2})
    trainable = sorted({layer.name for layer in model.get_layer("backbone").layers
                        if layer.trainable and layer.trainable_weights})
    assert trainable == ["Conv_1", "block_16_depthwise", "block_16_expand", "block_16_project"]
    backbone_weights = model.get_layer("backbone").trainable_weights
    assert [w.path for w in backbone_weights] == ["block_16_expand/kernel", "block_16_depthwise/kernel",
                                                  "block_16_project/kernel", "Conv_1/kernel"]
    assert len(model.trainable_weights) == len(backbone_weights) + 2  # + classifier kernel and bias


# --- save/load and facts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("backbone", "pooling", "scope", "mode"), [
    *[("fercnn", p, "head", "finetune") for p in POOLINGS],
    ("fercnn", "min", "all", "frozen"),
    ("mobilenetv3small", "min", "all", "finetune"),
])
def test_keras_round_trip_in_safe_mode_gives_identical_outputs(tmp_path, backbone, pooling, scope, mode):
    model = build_model({"backbone": backbone, "pooling": pooling, "pooling_scope": scope, "mode": mode,
                         "input_size": 48, "num_classes": 5, "dropout": 0.2})
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = faces(3)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.get_layer("pool").kind == pooling


def test_model_facts_for_fercnn_are_exact():
    config = cfg(pooling="none")
    model = build_model(config)
    facts = model_facts(model, config)
    convs = [(48, 1, 16), (48, 16, 16), (24, 16, 32), (24, 32, 32), (12, 32, 64), (12, 64, 64), (6, 64, 128),
             (6, 128, 128)]
    macs = sum(side * side * cout * 9 * cin for side, cin, cout in convs) + 3 * 3 * 128 * 5
    assert facts["flops"] == 2 * macs
    assert facts["pooled_dim"] == 3 * 3 * 128
    assert facts["params_total"] == model.count_params() and facts["params_trainable"] < facts["params_total"]
    assert 0.29e6 < facts["params_total"] < 1e6 and 0.5 < facts["size_mb"] < 5
    print(f"fercnn facts: {facts}")


def test_fercnn_learns_a_simple_synthetic_task_in_a_few_epochs():
    """Five shapes (bars, diagonal, ring, cross) at random places under noise: the quick-start model must
    learn them from scratch to >= 90% held-out accuracy in 3 epochs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]

    def draw(label):
        cy, cx = rng.integers(16, 32, 2)
        dy, dx = yy - cy, xx - cx
        mask = [(abs(dy) < 2) & (abs(dx) < 10), (abs(dx) < 2) & (abs(dy) < 10), (abs(dy - dx) < 2) & (abs(dx) < 8),
                abs(np.hypot(dy, dx) - 8) < 1.5, ((abs(dy) < 2) | (abs(dx) < 2)) & (abs(dy) < 8) & (abs(dx) < 8)][label]
        img = rng.normal(110, 25, (48, 48)) + 90 * mask
        return np.clip(img, 0, 255).astype(np.uint8)[..., None]

    y = np.arange(1000) % 5
    x = np.stack([draw(k) for k in y])
    keras.utils.set_random_seed(0)
    model = build_model(cfg(pooling="avg"))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:800], y[:800], batch_size=32, epochs=3, verbose=0)
    acc = model.evaluate(x[800:], y[800:], verbose=0)[1]
    print(f"fercnn synthetic shapes held-out accuracy after 3 epochs: {acc:.3f}")
    assert acc >= 0.9
