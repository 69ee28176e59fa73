"""Building a zoo model: prepare -> train (or derive) -> calibrate -> export -> evaluate once -> card.

``ferlab models build NAME --source FER2013 --work DIR`` runs :func:`build_model` for a registered spec
(or a spec file of your own). Every stage reuses ferlab's own commands' code, so the card's command
reproduces the files:

1. **Data**: ``ferlab data prepare`` with the spec's protocol, split and seed, into ``DIR/data/``
   (leak-free; the validation faces are carved from the training faces, the test faces are FER2013's own).
2. **Training**: ``ferlab train`` with the spec's recipe into ``DIR/runs/NAME`` (resumable: rerun the
   same command after an interruption). The epoch kept is the one with the best *validation* accuracy.
   An ensemble (``[ensemble]``) trains (or resumes) each member into ``DIR/runs/MEMBER`` and averages
   their probabilities in one graph. A derived spec (``[derive]``) trains nothing: it merges its parent's
   classes in the graph (:class:`ferlab.models.layers.MergeClasses`) and evaluates on the parent's faces,
   relabelled.
3. **Calibration**: one temperature fitted on the validation faces (:mod:`ferlab.evaluate.calibration`),
   folded into the classifier's weights (logits / T = (W / T) x + b / T), so every file ships calibrated.
   With ``tta = "flip"`` the graph then averages each face's probabilities with its mirror image's (and an
   ensemble its members'), and T is fitted for that average.
4. **Export**: the spec's ``files`` among :data:`ferlab.zoo.ZOO_FILES` (LiteRT float32 / float16 / int8
   calibrated on training faces / dynamic range, ONNX float32 / int8), each checked against the Keras
   model on the validation faces (top-1 agreement, max |delta p|).
5. **Test, once per reported number**: each shipped file's accuracy on the test faces; the card's
   per-class metrics, confusion and calibration error are those of the default file. Nothing is chosen
   on the test faces.

The folder is assembled in a temporary directory beside the destination and renamed into place, so a
failed build leaves the previous folder (or none) as it was; an existing folder is replaced only with
``overwrite``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ferlab import __version__
from ferlab.data.prepare import PrepareConfig, PreparedData, prepare
from ferlab.data.protocols import get_protocol
from ferlab.deploy.export import convert, input_spec, open_exported, parity, predict_chunked
from ferlab.deploy.formats import FORMATS, sidecar_path
from ferlab.errors import FerlabError
from ferlab.evaluate.calibration import ECE_BINS, expected_calibration_error, fit_temperature, negative_log_likelihood
from ferlab.evaluate.latency import machine_description
from ferlab.evaluate.metrics import classification_metrics
from ferlab.evaluate.tta import mirrored
from ferlab.face import FACE_SHAPE
from ferlab.io import atomic_dir, atomic_write_json, atomic_write_text
from ferlab.rundir import RunDir
from ferlab.zoo import (CARD_JSON, CARD_MD, FILE_EXPORTS, MEMBERS_DIR, MODELS, MODELS_DIR, ZOO_FILES, ZooSpec,
                        build_command, read_spec)
from ferlab.zoo.card import render_card
REPRESENTATIVE_FACES = 300  # int8 calibration faces, drawn from the training split


def spec_for(name_or_file: str | os.PathLike, beside: Path | None = None) -> tuple[ZooSpec, Path]:
    """A spec by name or file, with its file's path: a spec file, a ``NAME.toml`` in the folder ``beside``
    or its ``members/`` (a derived spec's parent, an ensemble's members), a registered zoo model, or an
    ensemble member of the zoo's own."""
    path = Path(name_or_file)
    if path.suffix == ".toml" and path.is_file():
        return read_spec(path), path
    folders = [beside, beside / MEMBERS_DIR.name] if beside is not None else []
    for folder in folders:
        if (folder / f"{name_or_file}.toml").is_file():
            return read_spec(folder / f"{name_or_file}.toml"), folder / f"{name_or_file}.toml"
    if str(name_or_file) in MODELS:
        entry = MODELS.get(str(name_or_file))
        return entry.spec, entry.spec_file
    if beside is not None and (MEMBERS_DIR / f"{name_or_file}.toml").is_file():
        return read_spec(MEMBERS_DIR / f"{name_or_file}.toml"), MEMBERS_DIR / f"{name_or_file}.toml"
    raise FerlabError(f"NAME {name_or_file}: not a zoo model ({MODELS.choices()}) nor a spec .toml file")


def data_dir(work: Path, spec: ZooSpec) -> Path:
    d = spec.data
    labels = "" if d.labels == "original" else f"-{d.labels}"
    test_part = "" if d.test_part == "both" else f"-{d.test_part}test"
    return work / "data" / f"{d.protocol}-{d.split}-s{d.seed}{labels}{test_part}"


def run_dir(work: Path, name: str) -> Path:
    return work / "runs" / name


def _prepared(spec: ZooSpec, source: str, work: Path, stage, ferplus: str | None = None) -> PreparedData:
    if spec.data.labels == "ferplus" and not ferplus:
        raise FerlabError(f"zoo model {spec.name} learns FER+ labels: pass --ferplus with FER+'s "
                          f"fer2013_jpg_to_ferplus.csv (for FER2013's image folders) or fer2013new.csv (for fer2013.csv)")
    target = data_dir(work, spec)
    if (target / "data.json").is_file():
        prepared = PreparedData(target)
        recorded = prepared.meta["config"]["source"]
        if Path(recorded).resolve() != Path(source).resolve() and recorded != source:
            raise FerlabError(f"--work {work}: {target} was prepared from {recorded}, not --source {source}; "
                              f"use another --work or the same --source")
        return prepared
    stage(f"preparing {spec.data.protocol} data from {source}")
    cfg = PrepareConfig(source=source, protocol=spec.data.protocol, labels=spec.data.labels,
                        ferplus=ferplus if spec.data.labels == "ferplus" else None,
                        split={"kind": spec.data.split, "seed": spec.data.seed, "val_fraction": spec.data.val_fraction,
                               "test_part": spec.data.test_part})
    return prepare(cfg, target)


def trained_members(spec: ZooSpec, spec_file: Path) -> list[ZooSpec]:
    """The specs whose trained networks make ``spec``'s classifier: itself ([run]) or its [ensemble] members."""
    if spec.run is not None:
        return [spec]
    if spec.ensemble is None:
        raise FerlabError(f"{spec_file}: {spec.name} is derived; derive from a trained model or an ensemble")
    members = [spec_for(name, beside=spec_file.parent)[0] for name in spec.ensemble.members]
    for member in members:
        if member.run is None:
            raise FerlabError(f"{spec_file}: [ensemble] member {member.name} has no [run]; members are trained specs")
        if member.data != members[0].data:
            raise FerlabError(f"{spec_file}: [ensemble] members {members[0].name} and {member.name} have different "
                              f"[data]; an ensemble's members are trained on the same faces")
    if len({m.name for m in members}) != len(members):
        raise FerlabError(f"{spec_file}: [ensemble] members {spec.ensemble.members}: each once")
    return members


def teacher_probabilities(teacher: str, prepared: PreparedData, work: Path, stage) -> tuple[np.ndarray, dict]:
    """A distillation teacher's probabilities on the training faces, computed once and cached in
    ``work/teachers/`` under the teacher file's and the data's fingerprints; returns them and their record
    for the card (which teacher, the file's and the probabilities' SHA-256)."""
    import hashlib

    from ferlab.deploy.formats import load_classifier
    from ferlab.zoo import resolve_model

    model_file = resolve_model(teacher)
    file_sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    cache = work / "teachers" / f"{Path(teacher).name}-{file_sha[:12]}-{prepared.fingerprint}.npy"
    x, _ = prepared.arrays("train")
    if cache.is_file():
        probs = np.load(cache, allow_pickle=False)
    else:
        stage(f"computing the teacher {teacher}'s probabilities on {len(x)} training faces (once; cached)")
        clf = load_classifier(model_file)
        if list(clf.classes) != list(prepared.classes):
            raise FerlabError(f"train.distill: teacher {teacher} answers {', '.join(clf.classes)}, not the data's "
                              f"{', '.join(prepared.classes)}; choose a teacher of the same protocol")
        probs = predict_chunked(clf.predict, x).astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, probs, allow_pickle=False)
        os.replace(tmp, cache)
    record = {"teacher": teacher, "file": model_file.name, "file_sha256": file_sha,
              "train_faces": len(x), "probabilities_sha256": hashlib.sha256(probs.tobytes()).hexdigest(),
              "teacher_train_accuracy": float((probs.argmax(1) == prepared.arrays("train")[1]).mean())}
    return probs, record


def _train(spec: ZooSpec, prepared: PreparedData, work: Path, weights: str | None, on_epoch,
           stage=lambda _text: None) -> tuple[Path, dict | None]:
    """Train (or resume) a spec's network; returns its run directory and, for a distilled recipe, the teacher's
    record."""
    from ferlab.train.config import resolve_run_config
    from ferlab.train.run import train_run

    raw = json.loads(json.dumps(spec.run))  # a deep copy
    raw["data"] = str(prepared.path.resolve())
    if weights is not None and raw.get("model", {}).get("weights") == "imagenet":  # --weights: the ImageNet file
        raw["model"]["weights"] = str(Path(weights).resolve())
    cfg = resolve_run_config(raw, f"zoo spec {spec.name} [run]")
    run = run_dir(work, spec.name)
    teacher_probs, teacher = None, None
    if cfg.train.distill is not None:
        teacher_probs, teacher = teacher_probabilities(cfg.train.distill.teacher, prepared, work, stage)
        teacher.update(weight=cfg.train.distill.weight, temperature=cfg.train.distill.temperature)
    metrics = train_run(cfg, run, data=prepared, on_epoch=on_epoch, teacher_probs=teacher_probs)
    if metrics.get("status") == "failed":
        raise FerlabError(f"{run}: training failed ({metrics.get('reason', 'see metrics.json')}); "
                          f"fix the spec's recipe and rerun with another --work")
    return run, teacher


def fold_temperature(model, temperature: float):
    """A copy of ``model`` whose softmax classifier outputs softmax(logits / T): W and b divided by T."""
    import keras

    calibrated = keras.models.clone_model(model)
    calibrated.set_weights(model.get_weights())
    layer = calibrated.get_layer("classifier")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])
    return calibrated


def merge_groups(parent_classes: list[str], protocol: str) -> tuple[list[str], list[list[int]]]:
    """The coarser protocol's classes and, for each, the parent class indices merged into it."""
    proto = get_protocol(protocol)
    groups = [[i for i, c in enumerate(parent_classes) if proto.class_of(c) == target] for target in proto.classes]
    if any(not g for g in groups):
        raise FerlabError(f"[derive] protocol {protocol}: class {proto.classes[groups.index([])]!r} has no "
                          f"source class among {parent_classes}")
    return list(proto.classes), groups


def with_merge(model, groups: list[list[int]], num_inputs: int):
    import keras

    from ferlab.models.layers import MergeClasses

    # outputs[0], not output: a loaded model's output is a one-item list
    merged = MergeClasses(groups, num_inputs, name="merge_classes")(model.outputs[0])
    return keras.Model(model.inputs[0], merged, name=f"{model.name}_merged")


def _probabilities(model, x):
    """``model(x)``'s one output (a loaded model's outputs are a one-item list)."""
    out = model(x)
    return out[0] if isinstance(out, (list, tuple)) else out


def with_mean(models: list, names: list[str], name: str = "ensemble"):
    """One graph averaging the probabilities of ``models`` (an ensemble) on the same input; each member is a
    nested model named by ``names`` (its own name may repeat another member's)."""
    import keras

    faces = keras.Input(models[0].inputs[0].shape[1:], dtype=models[0].inputs[0].dtype, name="faces")
    outputs = [_probabilities(keras.Model(model.inputs, model.outputs, name=member.replace("-", "_")), faces)
               for model, member in zip(models, names)]
    return keras.Model(faces, keras.layers.Average(name="ensemble_average")(outputs), name=name)


def with_flip_average(model):
    """``model`` with flip test-time augmentation in the graph: the mean of its probabilities on the faces
    and on their mirror images (one set of weights, run twice)."""
    import keras

    from ferlab.models.layers import Mirror

    faces = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name="faces")
    both = keras.layers.Average(name="flip_average")([_probabilities(model, faces),
                                                      _probabilities(model, Mirror(name="mirror")(faces))])
    return keras.Model(faces, both, name=f"{model.name}_flip")


def relabel(y: np.ndarray, groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Parent labels -> (keep mask, merged labels of the kept faces); faces of dropped classes go."""
    lookup = np.full(int(max(y.max(), max(max(g) for g in groups))) + 1, -1)
    for j, group in enumerate(groups):
        lookup[group] = j
    mapped = lookup[y]
    keep = mapped >= 0
    return keep, mapped[keep]


def _predict(predict: Callable, x: np.ndarray) -> np.ndarray:
    return predict_chunked(predict, np.asarray(x, np.float32).reshape(-1, *FACE_SHAPE), batch=256).astype(np.float64)


def _keras_predict(model, x: np.ndarray) -> np.ndarray:
    # model.predict traces once for the whole array (predict_on_batch retraces on every new batch shape)
    return np.asarray(model.predict(np.asarray(x, np.float32).reshape(-1, *FACE_SHAPE), batch_size=256, verbose=0),
                      np.float64)


def build_model(name_or_file: str | os.PathLike, *, source: str, work: str | os.PathLike,
                out: str | os.PathLike | None = None, weights: str | None = None, overwrite: bool = False,
                ferplus: str | os.PathLike | None = None,
                on_stage: Callable[[str], None] | None = None, on_epoch: Callable[[dict], None] | None = None,
                latency_runs: int = 50) -> dict:
    """Build one zoo model into ``out/NAME`` (default: the installed package's zoo) and return its card."""
    from importlib.metadata import version

    import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before anything needs it)
    from ferlab.models import load_model

    stage = on_stage or (lambda _text: None)
    spec, spec_file = spec_for(name_or_file)
    work = Path(work).resolve()
    out_root = Path(out) if out is not None else MODELS_DIR
    target = out_root / spec.name
    if target.exists() and not overwrite:
        raise FerlabError(f"--out {target}: already exists; pass --overwrite to rebuild it, or choose another --out")
    writable = next((p for p in (out_root, *out_root.parents) if p.exists()), Path("."))
    if not os.access(writable, os.W_OK):
        raise FerlabError(f"--out {out_root}: not writable (an installed package's folder?); give --out a folder of yours")
    started = time.perf_counter()

    if spec.derive is None:
        trained_spec, trained_file = spec, spec_file
    else:
        trained_spec, trained_file = spec_for(spec.derive.parent, beside=spec_file.parent)
        if trained_spec.derive is not None:
            raise FerlabError(f"[derive] parent {trained_spec.name}: derive from a trained model or an ensemble, "
                              f"not a derived one")
    members = trained_members(trained_spec, trained_file)
    data_spec = members[0].data
    prepared = _prepared(members[0], source, work, stage, str(ferplus) if ferplus is not None else None)
    runs, teachers = [], {}
    for member in members:
        stage(f"training (or resuming) {member.name}")
        run, teacher = _train(member, prepared, work, weights, on_epoch, stage)
        runs.append(RunDir(run))
        if teacher is not None:
            teachers[member.name] = teacher
    models = [load_model(run.model_file) for run in runs]
    trained = ({"run": trained_spec.run} if trained_spec.run is not None
               else {"ensemble": {m.name: m.run for m in members}})
    if spec.derive is None:
        classes, groups = list(prepared.classes), None
        recipe = {**trained, "data": data_spec.record()}
    else:
        classes, groups = merge_groups(list(prepared.classes), spec.derive.protocol)
        recipe = {"derive": spec.derive.model_dump(), **{f"parent_{k}": v for k, v in trained.items()},
                  "data": data_spec.record(), "groups": {c: [prepared.classes[i] for i in g]
                                                             for c, g in zip(classes, groups)}}

    def faces(split: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = prepared.arrays(split)
        if groups is None:
            return x, y
        keep, merged = relabel(np.asarray(y), groups)
        return x[keep], merged

    merge = (lambda p: p) if groups is None else (lambda p: merge_probabilities(p, groups))
    x_val, y_val = faces("val")
    x_test, y_test = faces("test")
    x_train, _ = faces("train")

    n_views = len(models) * (1 if spec.tta == "none" else 2)

    def raw_views(x: np.ndarray) -> np.ndarray:
        """The trained networks' probabilities (parent classes) on each view the shipped graph averages (each
        member, each image or its mirror), stacked: (views x N, C); temperature scaling works face by face
        and view by view, so T is fitted through the mean."""
        images = [x] if spec.tta == "none" else [x, mirrored(np.asarray(x).reshape(-1, *FACE_SHAPE))]
        return np.concatenate([_keras_predict(model, v) for model in models for v in images])

    def shipped_output(probs: np.ndarray) -> np.ndarray:  # (views x N, C) -> what the shipped graph outputs
        return merge(probs.reshape(n_views, -1, probs.shape[1]).mean(0))

    stage("fitting the temperature on the validation faces")
    val_raw = raw_views(x_val)
    temperature = fit_temperature(val_raw, y_val, transform=shipped_output)
    calibrated = [fold_temperature(model, temperature) for model in models]
    if spec.tta == "flip":
        calibrated = [with_flip_average(model) for model in calibrated]
    shipped = calibrated[0] if len(calibrated) == 1 else with_mean(calibrated, [m.name for m in members])
    if groups is not None:
        shipped = with_merge(shipped, groups, len(prepared.classes))
    reference_val = _keras_predict(shipped, x_val)
    validation = {"faces": len(y_val), "accuracy": float((reference_val.argmax(1) == y_val).mean())}
    if len(members) > 1:  # each member alone, with the spec's test-time augmentation: what the ensemble adds
        per_member = val_raw.reshape(len(members), -1, len(y_val), val_raw.shape[1])  # (members, images, N, C)
        validation["members"] = {m.name: float((merge(p.mean(0)).argmax(1) == y_val).mean())
                                 for m, p in zip(members, per_member)}

    representative = x_train[np.sort(np.random.default_rng(1).choice(len(x_train), min(REPRESENTATIVE_FACES,
                                                                                         len(x_train)), replace=False))]
    with atomic_dir(target, overwrite=True) as staging:  # existence was checked above, before any work
        files, test_probs = {}, {}
        for kind in spec.files:
            fmt, quantize = FILE_EXPORTS[kind]
            stage(f"exporting {ZOO_FILES[kind]}")
            blob, facts = convert(shipped, fmt, quantize, representative if quantize == "int8" else None)
            path = staging / ZOO_FILES[kind]
            path.write_bytes(blob)
            clf = open_exported(path, fmt, classes)
            agreement = parity(reference_val, _predict(clf.predict, x_val).astype(np.float32), np.asarray(y_val))
            stage(f"testing {ZOO_FILES[kind]} on {len(x_test)} test faces")
            test_probs[kind] = _predict(clf.predict, x_test)
            latency = clf.latency_ms(1, runs=latency_runs)
            atomic_write_json(sidecar_path(path), {
                "classes": classes, "format": fmt, "quantize": quantize, "zoo_model": spec.name,
                "input": input_spec(clf),
                "output": {"shape": [None, len(classes)], "dtype": "float32",
                           "content": "calibrated class probabilities (softmax), in the order of classes"},
                "runtime": FORMATS.get(fmt).runtime, **facts, "ferlab_version": __version__})
            files[kind] = {"file": ZOO_FILES[kind], "format": fmt, "quantize": quantize, "bytes": len(blob),
                           "runtime": FORMATS.get(fmt).runtime, "latency_ms_1_face": latency,
                           "test_accuracy": float((test_probs[kind].argmax(1) == y_test).mean()),
                           "validation_parity": {k: agreement[k] for k in ("top1_agreement", "max_abs_diff")}}

        stage("writing the card")
        default = spec.default_file
        test_raw = shipped_output(raw_views(x_test))  # the float model before and after the temperature
        test_calibrated = _keras_predict(shipped, x_test)
        metrics = classification_metrics(y_test, test_probs[default], classes)
        member_metrics = {member.name: run.ok_metrics() for member, run in zip(members, runs)}
        card = {
            "name": spec.name, "summary": spec.summary, "role": spec.role, "default": spec.default,
            "classes": classes, "default_file": default, "files": files, "tta": spec.tta,
            "data": {"source": prepared.meta["source"]["name"], "protocol": spec.derive.protocol if groups else
                     prepared.meta["protocol"]["name"], "split": prepared.meta["config"]["split"],
                     "fingerprint": prepared.fingerprint, "counts": {s: len(faces(s)[1]) for s in
                                                                     ("train", "val", "test")},
                     "dropped": {k: v for k, v in prepared.meta.get("dropped", {}).items() if v},
                     "licence": data_spec.licence},
            "recipe": recipe,
            **({"distillation": teachers if len(members) > 1 else teachers[members[0].name]} if teachers else {}),
            "validation": validation,
            "selection": {**(_selection(member_metrics[members[0].name]) if len(members) == 1 else
                             {"members": {name: _selection(m) for name, m in member_metrics.items()}}),
                          "rule": "the epoch with the best validation accuracy; the test faces choose nothing"},
            "test": {**{k: metrics[k] for k in ("n", "accuracy", "accuracy_ci95", "loss", "macro_precision",
                                                "macro_recall", "macro_f1", "weighted_f1", "per_class", "confusion")},
                     "file": default,
                     "keras_float_accuracy": float((test_calibrated.argmax(1) == y_test).mean())},
            "calibration": {
                "temperature": round(temperature, 4), "fitted_on": f"{len(y_val)} validation faces",
                "ece_bins": ECE_BINS, "runtime": "Keras float32 (before: without the temperature, after: with it)",
                "val_nll_before": negative_log_likelihood(shipped_output(val_raw), y_val),
                "val_nll_after": negative_log_likelihood(reference_val, y_val),
                "test_ece_before": expected_calibration_error(test_raw, y_test),
                "test_ece_after": expected_calibration_error(test_calibrated, y_test),
                "test_nll_before": negative_log_likelihood(test_raw, y_test),
                "test_nll_after": negative_log_likelihood(test_calibrated, y_test),
                "test_ece_default_file": expected_calibration_error(test_probs[default], y_test)},
            "model": {**(_architecture(member_metrics[members[0].name]) if len(members) == 1 else
                         {"members": {name: _architecture(m) for name, m in member_metrics.items()}}),
                      "params": int(shipped.count_params()),
                      "flops": _total([m.get("model", {}).get("flops") for m in member_metrics.values()])},
            "command": _command(spec, spec_file, weights, data_spec.labels),
            "spec": spec_file.read_text() if spec_file.is_file() else "",
            "built": {"ferlab_version": __version__, "keras_version": version("keras"),
                      "machine": machine_description(), "python": platform.python_version(),
                      "date": time.strftime("%Y-%m-%d"), "minutes": round((time.perf_counter() - started) / 60, 1)},
        }
        atomic_write_json(staging / CARD_JSON, card)
        atomic_write_text(staging / CARD_MD, render_card(card))
    return card


def _selection(metrics: dict) -> dict:
    """Which epoch a run kept, and its accuracies there (an ensemble's card lists each member's)."""
    return {"best_epoch": metrics.get("best_epoch"), "epochs": metrics.get("epochs_run"),
            "val_accuracy": metrics.get("val", {}).get("accuracy"),
            "train_accuracy": metrics.get("train", {}).get("accuracy")}


def _architecture(metrics: dict) -> dict:
    return {"backbone": metrics.get("backbone"), "pooling": metrics.get("pooling"),
            "input_size": metrics.get("input_size"), "params": metrics.get("model", {}).get("params_total"),
            "flops": metrics.get("model", {}).get("flops")}


def _total(values: list) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))


def merge_probabilities(probs: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """What :class:`MergeClasses` computes in the graph, in numpy: merged, renormalised probabilities."""
    merged = np.stack([probs[:, g].sum(1) for g in groups], axis=1)
    return merged / np.maximum(merged.sum(1, keepdims=True), 1e-12)


def _command(spec: ZooSpec, spec_file: Path, weights: str | None, labels: str = "original") -> str:
    name = spec.name if spec.name in MODELS and MODELS.get(spec.name).spec_file == spec_file else str(spec_file)
    return build_command(name, labels=labels, weights=weights)
