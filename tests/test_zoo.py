"""The model zoo: calibration, the build pipeline, the shipped models and their cards, FaceAnalyzer,
--model NAME / the default model on every command, and abstention."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FER2013, REPO, assert_one_line_error, invoke

from ferlab.errors import FerlabError
from ferlab.evaluate.calibration import apply_temperature, expected_calibration_error, fit_temperature
from ferlab.zoo import MODELS, ZOO_FILES, built_models, default_model, get_model

ZOO_BUDGET_BYTES = 30_000_000  # every shipped zoo file together (the wheel's models: ~30 MB at most)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------------- calibration
def test_temperature_fit_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(logits / 2.5)])  # the truth is twice as uncertain
    over_confident = softmax(logits)
    t = fit_temperature(over_confident, labels)
    before, after = expected_calibration_error(over_confident, labels), expected_calibration_error(
        apply_temperature(over_confident, t), labels)
    print(f"fitted T {t:.3f} (true 2.5); ECE {before:.4f} -> {after:.4f}")
    assert 2.3 < t < 2.7
    assert after < 0.02 < before
    assert (apply_temperature(over_confident, t).argmax(1) == over_confident.argmax(1)).all()


def test_expected_calibration_error_by_hand():
    # Two bins used: 0.9 (2 faces, 1 right: gap 0.4) and 0.6 (2 faces, 2 right: gap 0.4) -> 0.4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    assert expected_calibration_error(np.eye(2), np.array([0, 1])) == 0.0


def test_temperature_folded_into_the_classifier_scales_the_logits():
    from ferlab.models import ModelConfig, build_model
    from ferlab.zoo.build import fold_temperature

    model = build_model(ModelConfig(backbone="fercnn", num_classes=7))
    x = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1)).astype(np.float32)
    before = np.asarray(model.predict_on_batch(x), np.float64)
    after = np.asarray(fold_temperature(model, 2.0).predict_on_batch(x), np.float64)
    np.testing.assert_allclose(after, apply_temperature(before, 2.0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(x), np.float64), before)  # the original is untouched


def test_merge_classes_layer_gives_the_coarser_protocols_probabilities():
    import keras

    from ferlab.models.layers import MergeClasses
    from ferlab.zoo.build import merge_groups

    fer7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    classes, groups = merge_groups(fer7, "paper5")
    assert classes == ["angry", "anxious", "happy", "neutral", "sad"]
    assert groups == [[0], [2, 5], [3], [6], [4]]  # disgust (1) dropped, fear + surprise -> anxious
    p7 = softmax(np.random.default_rng(2).normal(size=(6, 7))).astype(np.float32)
    inputs = keras.Input((7,))
    merged = np.asarray(keras.Model(inputs, MergeClasses(groups, 7)(inputs)).predict_on_batch(p7))
    expected = np.stack([p7[:, g].sum(1) for g in groups], 1)
    np.testing.assert_allclose(merged, expected / expected.sum(1, keepdims=True), atol=1e-6)


# ------------------------------------------------------------------------------------------------ build
TINY = """name = "{name}"
summary = "a test model"
role = "fast"
[data]
protocol = "fer7"
split = "stratified"
licence = "synthetic faces drawn by ferlab: no restriction"
[run.model]
backbone = "fercnn"
[run.train]
epochs = 2
learning_rate = 2e-3
latency_runs = 0
tensorboard = false
"""
TINY5 = """name = "tiny5"
summary = "the test model merged to paper5, with flip test-time augmentation"
role = "fast"
files = ["litert", "onnx-int8"]
default_file = "litert"
tta = "flip"
[derive]
parent = "tiny"
protocol = "paper5"
"""


TINY_ENSEMBLE = """name = "tinyens"
summary = "the test model and a second one, averaged, with flip test-time augmentation"
role = "accurate"
files = ["litert"]
default_file = "litert"
tta = "flip"
[ensemble]
members = ["tiny", "tinyb"]
"""


@pytest.fixture(scope="module")
def built_tiny(tmp_path_factory):
    """A zoo model and its paper5 derivative built from spec files on small synthetic data."""
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.zoo.build import build_model

    root = tmp_path_factory.mktemp("zoo")
    (root / "specs").mkdir()
    (root / "specs" / "tiny.toml").write_text(TINY.format(name="tiny"))
    (root / "specs" / "tiny5.toml").write_text(TINY5)
    (root / "specs" / "members").mkdir()  # a member-only recipe, as the zoo's own specs/members/
    (root / "specs" / "members" / "tinyb.toml").write_text(TINY.format(name="tinyb").replace("[run.train]",
                                                                                        "[run.train]\nseed = 1"))
    (root / "specs" / "tinyens.toml").write_text(TINY_ENSEMBLE)
    # The build prepares its data itself; prepared here first, smaller, so the test is quick.
    prepare(PrepareConfig(source="synthetic", protocol="fer7", synthetic_per_class=150,
                          split={"kind": "stratified", "seed": 0}), root / "work" / "data" / "fer7-stratified-s0")
    stages = []
    cards = {name: build_model(root / "specs" / f"{name}.toml", source="synthetic", work=root / "work",
                               out=root / "out", latency_runs=3, on_stage=stages.append)
             for name in ("tiny", "tiny5", "tinyens")}
    print("stages:", stages)
    # A student of the built model: distillation from a model file (a zoo name works alike).
    (root / "specs" / "tinyd.toml").write_text(TINY.format(name="tinyd").replace(
        "[run.train]", f"[run.train.distill]\nteacher = \"{root / 'out' / 'tiny' / 'model.tflite'}\"\n"
        f"weight = 0.7\ntemperature = 2.0\n[run.train]"))
    cards["tinyd"] = build_model(root / "specs" / "tinyd.toml", source="synthetic", work=root / "work",
                                 out=root / "out", latency_runs=3)
    return root, cards


@pytest.mark.slow
def test_a_distilled_model_records_its_teacher_and_caches_its_probabilities(built_tiny):
    from ferlab.data.prepare import PreparedData
    from ferlab.deploy.formats import load_classifier
    from ferlab.zoo.build import teacher_probabilities

    root, cards = built_tiny
    record = cards["tinyd"]["distillation"]
    teacher = root / "out" / "tiny" / "model.tflite"
    assert record["teacher"] == str(teacher) and (record["weight"], record["temperature"]) == (0.7, 2.0)
    assert record["file_sha256"] == hashlib.sha256(teacher.read_bytes()).hexdigest()
    data = PreparedData(root / "work" / "data" / "fer7-stratified-s0")
    cached = list((root / "work" / "teachers").glob("*.npy"))
    assert len(cached) == 1
    probs, again = teacher_probabilities(str(teacher), data, root / "work", stage=pytest.fail)  # cached: no stage
    assert again == {k: v for k, v in record.items() if k not in ("weight", "temperature")}
    x, _ = data.arrays("train")
    np.testing.assert_allclose(probs[:20], load_classifier(teacher).predict(x[:20]), atol=1e-6)
    config = json.loads((root / "work" / "runs" / "tinyd" / "config.json").read_text())
    assert config["train"]["distill"] == {"teacher": str(teacher), "weight": 0.7, "temperature": 2.0,
                                          "cross_fit": None}


@pytest.mark.slow
def test_a_cross_fitted_teacher_answers_each_face_from_a_copy_that_never_trained_on_it(built_tiny):
    """cross_fit = 2: two copies of the teacher's recipe, each trained without one fold, each answering only
    its fold (calibrated on the validation faces); the probabilities are cached and the card says how."""
    from ferlab.data.prepare import PreparedData
    from ferlab.models import load_model
    from ferlab.zoo.build import Faces, Views, build_model, cross_fitted_probabilities

    root, _ = built_tiny
    work = root / "work"
    (root / "specs" / "tinycf.toml").write_text(TINY.format(name="tinycf").replace(
        'role = "fast"', 'role = "fast"\nfiles = ["litert"]\ndefault_file = "litert"').replace(
        "[run.train]", f"[run.train.distill]\nteacher = \"{root / 'specs' / 'tiny.toml'}\"\n"
        f"weight = 0.5\ntemperature = 1.0\ncross_fit = 2\n[run.train]"))
    stages = []
    card = build_model(root / "specs" / "tinycf.toml", source="synthetic", work=work, out=root / "out",
                       latency_runs=0, on_stage=stages.append)
    assert [s for s in stages if "teacher" in s][:1] == ["training (or resuming) the teacher tiny-fold1of2 "
                                                         "(378 faces; it answers the other 378)"]
    record = card["distillation"]
    assert (record["cross_fit"], record["weight"], record["temperature"]) == (2, 0.5, 1.0)
    assert "cross-fitted: its recipe trained 2 times" in (root / "out" / "tinycf" / "card.md").read_text()

    data = PreparedData(work / "data" / "fer7-stratified-s0")
    x, y = data.arrays("train")
    probs, again = cross_fitted_probabilities(str(root / "specs" / "tiny.toml"), 2, 0, data, work, None, None,
                                              stage=pytest.fail)  # cached: nothing trained or predicted again
    assert {k: v for k, v in record.items() if k not in ("weight", "temperature")} == again
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    seen = 0
    for i, fold in enumerate(record["folds"]):
        subset = PreparedData(work / "data" / f"fer7-stratified-s0-fold{i + 1}of2")
        sx, _ = subset.arrays("train")
        for split in ("val", "test"):  # only training faces are held out
            np.testing.assert_array_equal(subset.arrays(split)[0], data.arrays(split)[0])
        # the fold's faces are exactly those its copy never trained on
        trained_on = {bytes(face) for face in sx}
        held_out = np.array([bytes(face) not in trained_on for face in x])
        assert held_out.sum() == fold["held_out_faces"] and len(sx) == fold["train_faces"]
        model = load_model(work / "runs" / fold["run"] / "model.keras")
        views = Views([model], "none", Faces(subset, list(subset.classes), None))
        expected = apply_temperature(views.raw(x[held_out]), fold["temperature"])
        np.testing.assert_allclose(probs[held_out], expected, atol=1e-5)
        assert fold["held_out_accuracy"] == pytest.approx(float((expected.argmax(1) == y[held_out]).mean()))
        seen += held_out.sum()
    assert seen == len(x)
    with pytest.raises(FerlabError, match="is not a trained recipe without a teacher of its own"):
        cross_fitted_probabilities(str(root / "specs" / "tinycf.toml"), 2, 0, data, work, None, None, pytest.fail)


def test_training_folds_keep_duplicate_groups_together():
    from types import SimpleNamespace

    import pandas as pd

    from ferlab.data.prepare import training_folds

    groups = [0, 0, 0, 1, 2, 2, 3, 4, 5, 5, 9, 9]
    data = SimpleNamespace(manifest=pd.DataFrame({"duplicate_group": groups + [7, 8],
                                                  "split": ["train"] * len(groups) + ["val", "test"]}))
    folds = training_folds(data, 3, seed=0)
    assert len(folds) == len(groups) and set(folds) == {0, 1, 2}
    for g in set(groups):
        assert len({f for f, h in zip(folds, groups) if h == g}) == 1  # a group's faces share their fold
    np.testing.assert_array_equal(folds, training_folds(data, 3, seed=0))  # seeded


def test_distillation_targets_mix_the_softened_teacher_with_the_label():
    from ferlab.errors import FerlabError
    from ferlab.train.config import DistillConfig, TrainConfig
    from ferlab.train.loop import soften, training_targets

    class Data:  # the two things training_targets reads of a prepared data set
        classes = ("a", "b", "c")

        def arrays(self, split):
            return np.zeros((2, 48, 48, 1), np.uint8), np.array([0, 2])

    teacher = np.array([[0.8, 0.15, 0.05], [0.1, 0.1, 0.8]], np.float32)
    cfg = TrainConfig(distill=DistillConfig(teacher="t", weight=0.25, temperature=2.0))
    soft = soften(teacher, 2.0)
    np.testing.assert_allclose(soft[0], np.sqrt(teacher[0]) / np.sqrt(teacher[0]).sum(), rtol=1e-5)  # T=2: sqrt
    np.testing.assert_allclose(training_targets(cfg, Data(), teacher),
                               0.25 * soft + 0.75 * np.eye(3)[[0, 2]], rtol=1e-5)
    with pytest.raises(FerlabError, match="train.distill: teacher 't' needs its probabilities"):
        training_targets(cfg, Data())


@pytest.mark.slow
def test_a_built_model_has_its_files_and_a_complete_card(built_tiny):
    from ferlab.deploy.formats import load_classifier

    root, cards = built_tiny
    card, folder = cards["tiny"], root / "out" / "tiny"
    shipped = [ZOO_FILES[k] for k in ("litert", "litert-int8", "onnx")]  # a spec's default files
    assert list(card["files"]) == ["litert", "litert-int8", "onnx"] and card["tta"] == "none"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["card.json", "card.md", *shipped, *(f + ".json" for f in shipped)])
    assert json.loads((folder / "card.json").read_text()) == json.loads(json.dumps(card))
    assert oct(folder.stat().st_mode & 0o777) != oct(0o700)  # not the private temp dir's mode
    for key in ("classes", "files", "data", "recipe", "selection", "test", "calibration", "model", "command",
                "spec", "built"):
        assert key in card, key
    assert card["data"]["fingerprint"] and card["data"]["licence"].startswith("synthetic")
    assert card["command"].startswith("ferlab models build ") and "tiny.toml" in card["command"]
    lo, hi = card["test"]["accuracy_ci95"]
    assert lo <= card["test"]["accuracy"] <= hi
    assert set(card["test"]["per_class"]) == set(card["classes"]) and len(card["test"]["confusion"]) == 7
    cal = card["calibration"]
    assert cal["temperature"] > 0 and cal["val_nll_after"] <= cal["val_nll_before"] + 1e-6
    assert cal["test_ece_after"] < cal["test_ece_before"]  # the 2-epoch synthetic model is far from calibrated
    x = np.random.default_rng(3).integers(0, 256, (16, 48, 48, 1)).astype(np.uint8)
    for kind, entry in card["files"].items():
        path = folder / ZOO_FILES[kind]
        assert path.stat().st_size == entry["bytes"]
        clf = load_classifier(path)
        assert clf.classes == card["classes"]
        probs = clf.predict(x)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=0.01 if kind == "litert-int8" else 1e-4)  # int8: 1/256 steps
        # Export's parity bounds (97% int8, 99.5% float), less two binomial standard errors: the tiny model is
        # checked on 84 validation faces, where a file that agrees on 97% of faces shows 93.3-100%.
        n_val = card["validation"]["faces"]
        bound = 0.97 if kind == "litert-int8" else 0.995
        slack = 2 * (bound * (1 - bound) / n_val) ** 0.5
        assert entry["validation_parity"]["top1_agreement"] >= bound - slack, (kind, n_val)
    text = (folder / "card.md").read_text()
    assert f"{card['test']['accuracy']:.2%}" in text and card["command"] in text and "Licence" in text


@pytest.mark.slow
def test_a_derived_model_merges_its_parents_probabilities_with_flip_tta_in_the_graph(built_tiny):
    from ferlab.deploy.formats import load_classifier
    from ferlab.evaluate.tta import mirrored

    root, cards = built_tiny
    card = cards["tiny5"]
    assert list(card["files"]) == ["litert", "onnx-int8"] and card["tta"] == "flip"
    assert sorted(p.name for p in (root / "out" / "tiny5").iterdir()) == sorted(
        ["card.json", "card.md", "model.tflite", "model.tflite.json", "model-int8.onnx", "model-int8.onnx.json"])
    assert card["classes"] == ["angry", "anxious", "happy", "neutral", "sad"]
    assert card["recipe"]["groups"]["anxious"] == ["fear", "surprise"]
    assert card["data"]["counts"]["test"] < cards["tiny"]["data"]["counts"]["test"]  # disgust faces dropped
    parent = load_classifier(root / "out" / "tiny" / "model.tflite")
    child = load_classifier(root / "out" / "tiny5" / "model.tflite")
    x = np.random.default_rng(4).integers(0, 256, (32, 48, 48, 1)).astype(np.uint8)
    # Merging commutes with the argmax only up to the temperature: compare the merged parent probabilities,
    # rescaled by the two temperatures and averaged over each face and its mirror image, with the child's.
    t_parent, t_child = cards["tiny"]["calibration"]["temperature"], card["calibration"]["temperature"]
    views = []
    for faces in (x, mirrored(x)):
        raw = apply_temperature(parent.predict(faces).astype(np.float64), 1 / t_parent)  # undo the parent's T
        views.append(apply_temperature(raw, t_child))
    mean = (views[0] + views[1]) / 2
    merged = np.stack([mean[:, g].sum(1) for g in ([0], [2, 5], [3], [6], [4])], 1)
    np.testing.assert_allclose(child.predict(x), merged / merged.sum(1, keepdims=True), atol=2e-3)
    assert not np.allclose(views[0], views[1], atol=1e-3)  # the mirror image is a different view
    quantized = load_classifier(root / "out" / "tiny5" / "model-int8.onnx").predict(x)
    assert (quantized.argmax(1) == child.predict(x).argmax(1)).mean() >= 0.9


@pytest.mark.slow
def test_an_ensemble_averages_its_members_calibrated_probabilities_in_one_graph(built_tiny):
    from ferlab.deploy.formats import load_classifier
    from ferlab.evaluate.tta import mirrored
    from ferlab.models import load_model

    root, cards = built_tiny
    card = cards["tinyens"]
    assert card["recipe"]["ensemble"].keys() == {"tiny", "tinyb"} and card["model"]["members"].keys() == {"tiny", "tinyb"}
    assert set(card["selection"]["members"]) == {"tiny", "tinyb"} and set(card["validation"]["members"]) == {"tiny", "tinyb"}
    runs = root / "work" / "runs"
    assert (runs / "tinyb" / "model.keras").is_file()  # the member-only recipe was trained too
    # The shipped graph = the mean over both members and both views of softmax(logits / T).
    t = card["calibration"]["temperature"]
    x = np.random.default_rng(5).integers(0, 256, (32, 48, 48, 1)).astype(np.uint8)
    views = []
    for name in ("tiny", "tinyb"):
        member = load_model(runs / name / "model.keras")
        for faces in (x, mirrored(x)):
            probs = np.asarray(member.predict(faces.astype(np.float32), verbose=0), np.float64)
            views.append(apply_temperature(probs, t))  # softmax(logits / T)
    shipped = load_classifier(root / "out" / "tinyens" / "model.tflite").predict(x)
    np.testing.assert_allclose(shipped, np.mean(views, axis=0), atol=2e-3)
    assert not np.allclose(views[0], views[2], atol=1e-3)  # two different networks
    assert "An ensemble of 2 networks" in (root / "out" / "tinyens" / "card.md").read_text()


@pytest.mark.slow
def test_validation_only_weighs_each_member_without_reading_a_test_face(built_tiny, monkeypatch):
    """--validation-only: the ensemble's validation accuracy, and without each member, from the trained runs;
    the stage reads no test face and leaves the built model's folder untouched."""
    from ferlab.zoo import build as zoo_build

    root, cards = built_tiny
    folder = root / "out" / "tinyens"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    read = []
    split = zoo_build.Faces.split
    monkeypatch.setattr(zoo_build.Faces, "split", lambda self, name: read.append(name) or split(self, name))
    record = zoo_build.build_model(root / "specs" / "tinyens.toml", source="synthetic", work=root / "work",
                                   out=root / "out", validation_only=True)
    assert "test" not in read and {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    card = cards["tinyens"]["validation"]
    assert record["faces"] == card["faces"]
    # The shipped graph folds T into the logits; here T scales the probabilities' logs: the same up to rounding.
    assert abs(record["accuracy"] - card["accuracy"]) * record["faces"] <= 1
    assert record["without"].keys() == record["alone"].keys() == {"tiny", "tinyb"}
    for member, alone in record["alone"].items():  # alone, with the spec's flip TTA: the card's member figure
        assert abs(alone - card["members"][member]) * record["faces"] <= 1
    # a two-member ensemble without one member is the other alone
    assert record["without"]["tiny"] == record["alone"]["tinyb"]
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "models", "build", str(root / "specs" / "tinyens.toml"),
                             "--source", "synthetic", "--work", str(root / "work"), "--out", str(root / "out"),
                             "--validation-only"], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "validation faces" in result.stdout and "without tinyb" in result.stdout
    assert "tinyb: the ensemble without it" in result.stdout


@pytest.mark.slow
def test_build_refuses_to_replace_a_model_without_overwrite(built_tiny):
    root, _ = built_tiny
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "models", "build", str(root / "specs" / "tiny.toml"),
                             "--source", "synthetic", "--work", str(root / "work"), "--out", str(root / "out")],
                            check=False, capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, "already exists", "--overwrite")


@pytest.mark.slow
def test_each_build_stage_runs_alone_from_the_work_folder(built_tiny):
    """The stages are functions of what the stages before them returned: from a built --work, the data and
    the networks are reused (nothing prepared or trained again) and calibrating alone gives the card's T."""
    from ferlab.zoo.build import calibrate, derive_classes, plan_build, prepare_data, spec_for, train_networks

    root, cards = built_tiny
    work = root / "work"
    model_file = work / "runs" / "tiny" / "model.keras"
    before = model_file.stat().st_mtime_ns
    for name in ("tiny", "tiny5"):
        plan = plan_build(*spec_for(root / "specs" / f"{name}.toml"))
        stages = []
        prepared = prepare_data(plan, "synthetic", work, None, stages.append)
        trained = train_networks(plan, prepared, work, None, None, stages.append)
        faces = derive_classes(plan, prepared)
        calibrated = calibrate(plan, trained, faces, stages.append)
        assert stages == ["training (or resuming) tiny", "fitting the temperature on the validation faces"]
        assert faces.classes == cards[name]["classes"]
        assert round(calibrated.temperature, 4) == cards[name]["calibration"]["temperature"]
    assert model_file.stat().st_mtime_ns == before  # resumed: the finished run was only loaded


def test_shipped_sidecars_and_cards_are_their_schemas_byte_for_byte(tmp_path):
    """The typed schemas own the on-disk forms: every shipped sidecar and card validates and, written again
    through them, is the same bytes (the zoo's files are package data that readers depend on)."""
    from ferlab.deploy.sidecar import Sidecar, sidecar_path
    from ferlab.io import atomic_write_json
    from ferlab.zoo.card import ZooCard

    for entry in built_models():
        for path, schema in [(entry.folder / "card.json", ZooCard),
                             *((sidecar_path(entry.file(kind)), Sidecar) for kind in entry.spec.files)]:
            atomic_write_json(tmp_path / "again.json", schema(**json.loads(path.read_text())).dump())
            assert (tmp_path / "again.json").read_bytes() == path.read_bytes(), path


def test_a_sidecar_key_the_schema_does_not_declare_is_one_error(tmp_path):
    from ferlab.deploy.formats import classes_of
    from ferlab.deploy.sidecar import write_sidecar

    model_file = tmp_path / "model.onnx"
    common = {"classes": ["a", "b"], "fmt": "onnx", "quantize": "none", "runtime": "ONNX Runtime (CPU)",
              "input": {"shape": [None, 48, 48, 1], "layout": "NHWC", "content": "faces", "dtype": "float32"}}
    with pytest.raises(FerlabError, match=r"model.onnx.json: not a valid sidecar \(new_fact: .*declare the key"):
        write_sidecar(model_file, **common, facts={"new_fact": 1})
    assert not (tmp_path / "model.onnx.json").exists()
    written = write_sidecar(model_file, **common, facts={}, zoo_model="m")
    assert written.output.content == "class probabilities (softmax), in the order of classes"
    assert set(json.loads((tmp_path / "model.onnx.json").read_text())) == {
        "classes", "format", "quantize", "input", "output", "runtime", "ferlab_version", "zoo_model"}
    (tmp_path / "model.onnx.json").write_text(json.dumps({"classes": ["x", "y"]}))  # by hand: classes suffice
    assert classes_of(model_file) == ["x", "y"]


def test_zoo_specs_are_checked_with_one_line_errors(tmp_path):
    from ferlab.zoo import read_spec

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nsummary = "x"\nrole = "fast"\n[derive]\nparent = "fast-fer7"\nprotocol = "paper5"\n'
                   '[run.model]\nbackbone = "fercnn"\n')
    with pytest.raises(FerlabError, match="give one of \\[run\\] .*\\[ensemble\\] or \\[derive\\]"):
        read_spec(bad)
    ensemble_with_data = tmp_path / "ens.toml"
    ensemble_with_data.write_text('name = "ens"\nsummary = "x"\nrole = "accurate"\n[ensemble]\n'
                                  'members = ["fast-fer7", "tiny"]\n[data]\nprotocol = "fer7"\n')
    with pytest.raises(FerlabError, match="takes its data from its members: remove \\[data\\]"):
        read_spec(ensemble_with_data)
    lonely = tmp_path / "lonely.toml"
    lonely.write_text('name = "lonely"\nsummary = "x"\nrole = "accurate"\n[ensemble]\nmembers = ["fast-fer7"]\n')
    with pytest.raises(FerlabError, match="ensemble.members"):
        read_spec(lonely)
    other = tmp_path / "other.toml"
    other.write_text(TINY.format(name="tiny"))
    with pytest.raises(FerlabError, match="name 'tiny' differs from the file name"):
        read_spec(other)
    unshipped = tmp_path / "unshipped.toml"
    unshipped.write_text(TINY.format(name="unshipped").replace('role = "fast"', 'role = "fast"\nfiles = ["onnx"]'))
    with pytest.raises(FerlabError, match="default_file 'litert-int8' is not among files"):
        read_spec(unshipped)


def test_an_ensembles_members_are_trained_specs_on_the_same_data(tmp_path):
    from ferlab.zoo import read_spec
    from ferlab.zoo.build import trained_members

    def ensemble(members: str):
        path = tmp_path / "ens.toml"
        path.write_text(f'name = "ens"\nsummary = "x"\nrole = "accurate"\n[ensemble]\nmembers = {members}\n')
        return read_spec(path), path

    (tmp_path / "members").mkdir()
    (tmp_path / "members" / "tiny.toml").write_text(TINY.format(name="tiny"))  # fer7, stratified split
    with pytest.raises(FerlabError, match="members fast-fer7 and tiny have different \\[data\\]"):
        trained_members(*ensemble('["fast-fer7", "tiny"]'))
    with pytest.raises(FerlabError, match="member fast-paper5 has no \\[run\\]"):
        trained_members(*ensemble('["fast-fer7", "fast-paper5"]'))
    with pytest.raises(FerlabError, match="each once"):
        trained_members(*ensemble('["fast-fer7", "fast-fer7"]'))
    assert [m.name for m in trained_members(*ensemble('["mobilenetv2-fer7", "fast-fer7"]'))] == [
        "mobilenetv2-fer7", "fast-fer7"]  # the zoo's own member recipe, found in specs/members/


def test_a_file_a_model_does_not_ship_is_one_clear_error(tmp_path):
    from ferlab.zoo import ZooModel, read_spec

    spec_file = tmp_path / "lean.toml"
    spec_file.write_text(TINY.format(name="lean").replace('role = "fast"', 'role = "fast"\nfiles = ["litert-int8"]'))
    entry = ZooModel(read_spec(spec_file), spec_file, tmp_path / "lean")
    assert entry.file("litert-int8") == tmp_path / "lean" / "model-int8.tflite"
    with pytest.raises(FerlabError, match="ships litert-int8 only .*ferlab models build my-zoo/lean.toml --source "
                                          "path/to/fer2013 .*--out my-zoo"):
        entry.file("onnx")
    entry.folder.mkdir()
    for name in ("card.json", "model-int8.tflite"):
        (entry.folder / name).write_text("{}")
    assert entry.model_file("litert") == entry.file("litert-int8")  # a runtime's only file stands for it
    with pytest.raises(FerlabError, match="--backend onnx: zoo model lean ships litert-int8 only"):
        entry.model_file("onnx")


# ------------------------------------------------------------------------------------ the shipped models
def test_the_registry_has_a_fast_and_an_accurate_model_for_each_protocol():
    specs = {m.name: m.spec for m in MODELS}
    assert default_model().name == "fast-fer7" and next(iter(MODELS.names())) == "fast-fer7"
    for role in ("fast", "accurate"):
        assert {f"{role}-fer7", f"{role}-paper5"} <= set(specs)
        assert specs[f"{role}-paper5"].derive.parent == f"{role}-fer7"


def test_the_default_model_ships_and_every_shipped_card_matches_its_files():
    assert default_model().built, "the default zoo model must ship inside the package"
    total = 0
    for entry in built_models():
        card = entry.card()
        assert card["name"] == entry.name and card["command"].startswith(f"ferlab models build {entry.name} ")
        assert entry.spec_file.read_text() == card["spec"]  # the card describes the spec in the repository
        assert "research" in card["data"]["licence"] and card["data"]["fingerprint"]
        for kind, meta in card["files"].items():
            path = entry.file(kind)
            total += path.stat().st_size
            assert path.stat().st_size == meta["bytes"], path
            assert json.loads(Path(str(path) + ".json").read_text())["classes"] == card["classes"]
        cal = card["calibration"]
        assert cal["val_nll_after"] <= cal["val_nll_before"] + 1e-6  # T minimises it there; T = 1 is a candidate
        assert cal["test_ece_default_file"] <= 0.05, cal  # a calibrated model: within 5 points on FER2013's test
        print(f"{entry.name}: test accuracy {card['test']['accuracy']:.4f} {card['test']['accuracy_ci95']}, "
              f"ECE {cal['test_ece_before']:.4f} -> {cal['test_ece_after']:.4f} (file {cal['test_ece_default_file']:.4f}), "
              f"{card['model']['params']:,} parameters")
    print(f"zoo files: {total / 1e6:.2f} MB")
    assert total <= ZOO_BUDGET_BYTES


@pytest.mark.real_data
@pytest.mark.slow
def test_the_shipped_default_model_reproduces_its_cards_test_accuracy(fer2013_faces, tmp_path):
    """The shipped files are the card's: rerun each on the same leak-free FER2013 test faces."""
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.deploy.formats import load_classifier

    entry = default_model()
    card = entry.card()
    split = card["data"]["split"]
    data = prepare(PrepareConfig(source=str(FER2013), protocol=card["data"]["protocol"],
                                 split={"kind": split["kind"], "seed": split["seed"],
                                        "val_fraction": split["val_fraction"]}), tmp_path / "data",
                   faces=fer2013_faces)  # the session's loaded folder: the fingerprint below proves it is the card's
    assert data.fingerprint == card["data"]["fingerprint"]
    x, y = data.arrays("test")
    for kind, meta in card["files"].items():
        probs = load_classifier(entry.file(kind)).predict(x.reshape(-1, 48, 48, 1))
        accuracy = float((probs.argmax(1) == y).mean())
        print(f"{entry.name} {kind}: {accuracy:.4f} (card {meta['test_accuracy']:.4f})")
        assert accuracy == pytest.approx(meta["test_accuracy"], abs=0.001)


# ----------------------------------------------------------------------------------- using the models
@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    import cv2
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_face_analyzer_in_two_lines_on_a_path_an_array_and_a_pil_image(astronaut):
    import cv2
    from PIL import Image

    from ferlab import FaceAnalyzer

    analyzer = FaceAnalyzer()
    faces = analyzer.analyze(str(astronaut))
    assert len(faces) == 1
    face = faces[0]
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 240 and 50 < y + h / 2 < 150  # Eileen Collins's face, top centre of the photo
    assert face.label in analyzer.classes and face.confidence == pytest.approx(float(face.probabilities.max()))
    assert face.probabilities.sum() == pytest.approx(1.0, abs=0.01)  # the int8 file's output: steps of 1/256
    print("astronaut:", face.to_dict())
    bgr = cv2.imread(str(astronaut))
    same = [analyzer.analyze(bgr)[0], analyzer.analyze(Image.open(astronaut))[0], analyzer.analyze(astronaut)[0]]
    for other in same:
        assert other.box == face.box and other.label == face.label
        np.testing.assert_allclose(other.probabilities, face.probabilities, atol=1e-6)
    gray = analyzer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1


def test_face_analyzer_batches_and_abstains(astronaut):
    import cv2

    from ferlab import FaceAnalyzer
    from ferlab.deploy.pipeline import UNCERTAIN

    analyzer = FaceAnalyzer()
    frame = cv2.imread(str(astronaut))
    empty = np.zeros((240, 320, 3), np.uint8)
    batch = analyzer.analyze_batch([frame, empty, astronaut])
    assert [len(faces) for faces in batch] == [1, 0, 1]
    np.testing.assert_allclose(batch[0][0].probabilities, analyzer.analyze(frame)[0].probabilities, atol=1e-6)
    careful = FaceAnalyzer(min_confidence=0.999)
    assert careful.analyze(frame)[0].label == UNCERTAIN
    assert careful.analyze(frame)[0].to_dict()["label"] == UNCERTAIN
    with pytest.raises(FerlabError, match="--min-confidence"):
        FaceAnalyzer(min_confidence=1.5)
    with pytest.raises(FerlabError, match="image 0: expected uint8"):
        analyzer.analyze(frame.astype(np.float32))
    with pytest.raises(FerlabError, match="image 0: expected a file path"):
        analyzer.analyze(42)
    with pytest.raises(FerlabError, match="--model no-such: no such file"):
        FaceAnalyzer("no-such")


def test_predict_runs_with_no_model_given_and_picks_zoo_models_by_name(astronaut, tmp_path):
    import pandas as pd

    out = tmp_path / "r.csv"
    invoke("predict", str(astronaut), "--out", str(out))
    rows = pd.read_csv(out)
    assert len(rows) == 1 and rows["label"][0] in default_model().card()["classes"]
    if get_model("fast-paper5").built:
        out5 = tmp_path / "r5.csv"
        invoke("predict", str(astronaut), "--model", "fast-paper5", "--out", str(out5), "--min-confidence", "0.999")
        rows5 = pd.read_csv(out5)
        assert "p_anxious" in rows5.columns and rows5["label"][0] == "uncertain"


def test_models_commands_list_show_path_and_export(tmp_path):
    listed = invoke("models", "list").output
    for entry in MODELS:
        assert entry.name in listed
    name = default_model().name
    assert "## Calibration" in invoke("models", "show", name).output
    path = Path(invoke("models", "path", name).output.strip())
    assert path == default_model().model_file() and path.is_file()
    out = tmp_path / "fer.tflite"
    invoke("export", "--quantize", "int8", "--out", str(out))
    assert out.read_bytes() == default_model().file("litert-int8").read_bytes()
    assert (tmp_path / "fer.tflite.json").is_file() and (tmp_path / "fer.tflite.card.md").is_file()
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "export", name, "--quantize", "int8", "--out", str(out)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "already exists")
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "export", name, "--quantize", "fp16", "--out",
                             str(tmp_path / "x.tflite")], check=False, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "ships litert --quantize none, litert --quantize int8, onnx --quantize none")
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "models", "show", "nope"],
                            check=False, capture_output=True, text=True, timeout=120)
    # The argument is NAME (not --model), and the names there are follow.
    assert_one_line_error(result, f"NAME nope: not a zoo model; choose {MODELS.choices()}")
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "export", "nope"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "MODEL_OR_RUN nope: no such run directory and not a zoo model", MODELS.choices())


def test_export_help_names_zoo_models_and_runs():
    assert "Export a zoo model (by name) or a trained run's model" in invoke("--help").output


def test_a_file_the_zoo_does_not_ship_names_a_build_that_runs(tmp_path, monkeypatch):
    """`ferlab export NAME --quantize fp16` says how to build that file; followed to the letter, its command
    parses (no missing option) and builds a copy of the spec that lists the file, into a folder of one's own."""
    import re
    import shlex

    import ferlab.zoo.build as zoo_build
    from ferlab.zoo import export_zoo_file, read_spec

    entry = default_model()
    assert "litert-fp16" not in entry.spec.files
    with pytest.raises(FerlabError) as err:
        export_zoo_file(entry.name, None, "fp16", tmp_path / "x.tflite")
    found = re.search(r"copy (\S+) to (\S+), set (files = \[[^]]*\]) at its top, then run `([^`]+)`$", str(err.value))
    assert found, str(err.value)
    spec_file, copy, files, command = found.groups()
    assert Path(spec_file) == entry.spec_file and "--source path/to/fer2013" in command
    monkeypatch.chdir(tmp_path)
    Path(copy).parent.mkdir()
    Path(copy).write_text(files + "\n" + entry.spec_file.read_text())
    calls = []
    monkeypatch.setattr(zoo_build, "build_model", lambda name, **kw: calls.append((name, kw)) or entry.card())
    invoke(*shlex.split(command)[1:])
    (name, kw), = calls
    assert read_spec(name).files == [*entry.spec.files, "litert-fp16"]
    assert kw["source"] == "path/to/fer2013" and Path(kw["out"]) == Path(copy).parent  # not the installed zoo


@pytest.mark.slow
def test_the_wheel_carries_the_zoo(tmp_path):
    """What `pip install ferlab` gets: the specs and the built models inside the wheel."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(REPO)], check=False, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PIP_NO_INDEX": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("ferlab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in MODELS:
        assert f"ferlab/zoo/specs/{entry.name}.toml" in names
    for entry in built_models():
        for file in (*(ZOO_FILES[kind] for kind in entry.spec.files), "card.json", "card.md"):
            assert f"ferlab/zoo/models/{entry.name}/{file}" in names
    # The page's on-device code and the runtime's lockfile ship; the runtime itself (node_modules) does not.
    for file in ("static/ondevice/engine.js", "static/ondevice/worker.js", "static/ondevice/sw.js", "static/manifest.webmanifest",
                 "static/icons/icon-192.png", "npm/package.json", "npm/package-lock.json"):
        assert f"ferlab/deploy/web/{file}" in names, file
    assert not any("node_modules" in name for name in names)
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB")


def test_the_web_app_serves_the_default_model_and_abstains(astronaut):
    from fastapi.testclient import TestClient

    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.web import create_app

    classifier = load_classifier(default_model().model_file())
    for min_confidence, expect_uncertain in ((0.0, False), (0.999, True)):
        app = create_app(classifier, lambda: make_detector("blazeface"), workers=1, min_confidence=min_confidence)
        with TestClient(app) as client:
            answer = client.post("/api/predict", files={"file": ("a.png", astronaut.read_bytes(), "image/png")})
        assert answer.status_code == 200, answer.text
        faces = answer.json()["faces"]
        assert len(faces) == 1
        assert (faces[0]["label"] == "uncertain") == expect_uncertain, faces[0]
