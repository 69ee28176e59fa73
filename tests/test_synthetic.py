"""The embedded synthetic data set: deterministic, well-formed, face-like, and hard enough that a linear
model on raw pixels does clearly worse than a small CNN."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from ferlab.data.faceset import FER2013_CLASSES, FaceSet
from ferlab.data.synthetic import GENERATOR_VERSION, load_synthetic


@pytest.fixture(scope="module")
def faces() -> FaceSet:
    return load_synthetic(per_class=20, seed=0)


def test_shapes_classes_and_provenance(faces: FaceSet) -> None:
    assert faces.images.shape == (140, 48, 48) and faces.images.dtype == np.uint8
    prov = faces.provenance
    assert prov["origin_label"].value_counts().to_dict() == {c: 20 for c in FER2013_CLASSES}
    assert list(prov["source"]) == [f"synthetic:{i}" for i in range(140)]
    assert prov["origin_split"].isin(["Training", "PublicTest", "PrivateTest"]).all()
    # FER2013-like usages, stratified: exactly 80/10/10 within every class.
    counts = pd.crosstab(prov["origin_label"], prov["origin_split"])
    assert (counts["Training"] == 16).all() and (counts["PublicTest"] == 2).all() and (counts["PrivateTest"] == 2).all()
    assert faces.name == "synthetic(per_class=20, seed=0)"
    assert faces.notes["generator"] == GENERATOR_VERSION


def test_deterministic_and_independent_of_batch(faces: FaceSet) -> None:
    again = load_synthetic(per_class=20, seed=0)
    assert again.images.tobytes() == faces.images.tobytes()
    assert again.provenance.equals(faces.provenance)
    # Image i comes from its own generator, so a smaller set is a prefix of a larger one.
    assert load_synthetic(per_class=3, seed=0).images.tobytes() == faces.images[:21].tobytes()
    other = load_synthetic(per_class=20, seed=1)
    assert (other.images != faces.images).any(axis=(1, 2)).all(), "every image should change with the seed"


def test_images_look_like_photos_not_cartoons(faces: FaceSet) -> None:
    images = faces.images.astype(np.float32)
    assert 70 < images.mean() < 180, "mid-grey overall"
    assert (images.std(axis=(1, 2)) > 8).all(), "every image has contrast"
    assert all(len(np.unique(im)) >= 48 for im in faces.images), "many grey levels (anti-aliasing, shading, noise)"
    assert len({im.tobytes() for im in faces.images}) == len(faces.images), "no duplicates"


def test_bad_per_class() -> None:
    with pytest.raises(ValueError, match="per_class"):
        load_synthetic(per_class=0)


@pytest.mark.slow
def test_linear_model_does_clearly_worse_than_a_small_cnn() -> None:
    """The study's 5-class protocol (fear + surprise -> anxious, disgust dropped), 800 train and 400 test
    images per class: logistic regression on raw pixels vs a small CNN trained for a few epochs."""
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    n_train, n_test = 800, 400
    start = time.perf_counter()
    faces = load_synthetic(per_class=n_train + n_test, seed=0)
    generated = time.perf_counter() - start
    mapping = {"angry": "angry", "fear": "anxious", "surprise": "anxious", "happy": "happy", "neutral": "neutral",
               "sad": "sad"}
    classes = sorted(set(mapping.values()))
    labels = faces.provenance["origin_label"].map(mapping)  # disgust -> NaN, never selected
    train = np.concatenate([np.flatnonzero(labels == c)[:n_train] for c in classes])
    test = np.concatenate([np.flatnonzero(labels == c)[n_train:n_train + n_test] for c in classes])
    assert len(test) == n_test * len(classes)
    y = labels.map({c: k for k, c in enumerate(classes)}).to_numpy(dtype=np.int64, na_value=-1)
    x = faces.images.astype(np.float32) / 255.0

    # (a) Linear: standardised raw pixels. Strong L2 (C=1e-3) is the best of 1e-3..1 on this data and
    # converges in ~130 lbfgs iterations; weaker penalties overfit the 2304 pixels and do worse. One BLAS
    # thread: on 2 busy cores, threaded BLAS in lbfgs' small products is several times slower.
    start = time.perf_counter()
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=1e-3, max_iter=500))
    with threadpool_limits(limits=1):
        linear.fit(x[train].reshape(len(train), -1), y[train])
    linear_acc = linear.score(x[test].reshape(len(test), -1), y[test])
    linear_s = time.perf_counter() - start

    # (b) A small CNN: four conv-BN-ReLU-maxpool blocks (16-128 wide; the fourth block's receptive field
    # covers a whole brow-eye or mouth region), global average pooling, softmax. Cheap enough for 2 CPU cores.
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    epochs, batch = 6, 64
    inputs = keras.Input((48, 48, 1))
    h = inputs
    for width in (16, 32, 64, 128):
        h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization(momentum=0.9)(h)  # short run: moving statistics must keep up
        h = keras.layers.ReLU()(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    cnn = keras.Model(inputs, keras.layers.Dense(len(classes), activation="softmax")(h))
    steps = epochs * int(np.ceil(len(train) / batch))
    cnn.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cnn.fit(x[train, ..., None], y[train], batch_size=batch, epochs=epochs, verbose=0)
    cnn_acc = cnn.evaluate(x[test, ..., None], y[test], verbose=0)[1]
    cnn_s = time.perf_counter() - start

    print(f"\nsynthetic 5-class, {n_train}/{n_test} images per class ({len(faces)} generated in {generated:.1f}s): "
          f"linear {linear_acc:.3f} ({linear_s:.1f}s), CNN {cnn_acc:.3f} ({epochs} epochs, {cnn_s:.1f}s)")
    assert cnn_acc >= 0.90
    assert linear_acc <= 0.70
    assert cnn_acc - linear_acc >= 0.20
