"""Building a zoo model: prepare -> train (or derive) -> calibrate -> export -> test once -> card.

``ferlab models build NAME --source FER2013 --work DIR`` runs :func:`build_model` for a registered spec
(or a spec file of your own). :func:`build_model` only runs the stages in order; each stage is a function
of its own, handed what the stages before it returned (:class:`BuildPlan`, :class:`Trained`,
:class:`Faces`, :class:`Calibrated`, :class:`Exported`, :class:`Evaluated`), so each can be run and tested
alone. Every stage reuses ferlab's own commands' code, so the card's command reproduces the files:

1. **Data** (:func:`prepare_data`): ``ferlab data prepare`` with the spec's protocol, split and seed, into
   ``DIR/data/`` (leak-free; the validation faces are carved from the training faces, the test faces are
   FER2013's own).
2. **Training** (:func:`train_networks`, then :func:`derive_classes`): ``ferlab train`` with the spec's
   recipe into ``DIR/runs/NAME`` (resumable: rerun the same command after an interruption). The epoch kept
   is the one with the best *validation* accuracy. An ensemble (``[ensemble]``) trains (or resumes) each
   member into ``DIR/runs/MEMBER`` and averages their probabilities in one graph. A derived spec
   (``[derive]``) trains nothing of its own: it merges its parent's classes in the graph
   (:class:`ferlab.models.layers.MergeClasses`) and evaluates on the parent's faces, relabelled.
3. **Calibration** (:func:`calibrate`): one temperature fitted on the validation faces
   (:mod:`ferlab.evaluate.calibration`), folded into the classifier's weights (logits / T = (W / T) x + b / T),
   so every file ships calibrated. With ``tta = "flip"`` the graph then averages each face's probabilities
   with its mirror image's (and an ensemble its members'), and T is fitted for that average.
4. **Export** (:func:`export_file`): the spec's ``files`` among :data:`ferlab.zoo.ZOO_FILES` (LiteRT float32
   / float16 / int8 calibrated on training faces / dynamic range, ONNX float32 / int8), each checked
   against the Keras model on the validation faces (top-1 agreement, max |delta p|) and written with its
   sidecar (:func:`ferlab.deploy.sidecar.write_sidecar`, as ``ferlab export`` writes it).
5. **Test, once per reported number** (:func:`evaluate_file`): each shipped file's accuracy on the test
   faces; the card's per-class metrics, confusion and calibration error are those of the default file.
   Nothing is chosen on the test faces.
6. **Card** (:func:`model_card`, :func:`ferlab.zoo.card.write_card`): ``card.json`` and ``card.md``
   (:class:`ferlab.zoo.card.ZooCard`).

``validation_only`` (``--validation-only``) stops after stage 2 with :func:`member_validation`: the
validation accuracy of the networks as the spec combines them, and of an ensemble without each member,
so an ensemble's members are fixed on validation faces before the ensemble's test accuracy is measured (a
member stays if dropping it lowers the validation accuracy). Each member's training run records its own
test metrics, as ``ferlab train`` does; the decision uses none of them. Nothing is written but the runs.

Resuming: what takes long is kept in ``DIR`` (the prepared data in ``DIR/data/``, each network's run in
``DIR/runs/NAME``, a teacher's probabilities in ``DIR/teachers/``), so a rerun skips it; the later stages
are deterministic and recomputed from it.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlab import __version__
from ferlab.data.prepare import PrepareConfig, PreparedData, prepare_or_reuse
from ferlab.data.protocols import get_protocol
from ferlab.deploy.export import REPRESENTATIVE_IMAGES, convert, input_spec, open_exported, parity, predict_chunked
from ferlab.deploy.formats import FORMATS
from ferlab.deploy.sidecar import write_sidecar
from ferlab.errors import FerlabError
from ferlab.evaluate.calibration import (ECE_BINS, apply_temperature, expected_calibration_error, fit_temperature,
                                        negative_log_likelihood)
from ferlab.evaluate.latency import machine_description
from ferlab.evaluate.metrics import classification_metrics
from ferlab.evaluate.tta import mirrored
from ferlab.face import FACE_SHAPE
from ferlab.io import atomic_dir
from ferlab.rundir import RunDir
from ferlab.zoo import FILE_EXPORTS, MEMBERS_DIR, MODELS, MODELS_DIR, ZOO_FILES, ZooSpec, build_command, read_spec
from ferlab.zoo.card import CardBuilt, CardCalibration, CardData, CardFile, ZooCard, write_card



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
    """The spec's [data] from ``source`` in the work directory: prepared there by an earlier build with the
    same settings, else now (the data layer's one rule, :func:`ferlab.data.prepare.prepare_or_reuse`)."""
    d = spec.data
    if d.labels == "ferplus" and not ferplus:
        raise FerlabError(f"zoo model {spec.name} learns FER+ labels: pass --ferplus with FER+'s "
                          f"fer2013_jpg_to_ferplus.csv (for FER2013's image folders) or fer2013new.csv (for fer2013.csv)")
    cfg = PrepareConfig(source=source, protocol=d.protocol, labels=d.labels,
                        ferplus=ferplus if d.labels == "ferplus" else None,
                        split={"kind": d.split, "seed": d.seed, "val_fraction": d.val_fraction, "test_part": d.test_part})
    return prepare_or_reuse(cfg, data_dir(work, spec), says="--source, --ferplus and the spec's [data] say",
                            fix="use another --work or the same --source",
                            on_prepare=lambda: stage(f"preparing {d.protocol} data from {source}"))


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


def cross_fitted_probabilities(teacher: str, folds: int, seed: int, prepared: PreparedData, work: Path,
                               weights: str | None, on_epoch, stage) -> tuple[np.ndarray, dict]:
    """A teacher recipe's out-of-fold probabilities on the training faces (``train.distill.cross_fit``): the
    faces dealt to ``folds`` folds (:func:`ferlab.data.prepare.training_folds`), one copy of the recipe trained
    without each fold (``work/runs/TEACHER-foldIofK``, on ``work/data/DATA-foldIofK``; resumable like any
    member), temperature-calibrated on the validation faces, answering that fold alone (with the recipe's
    test-time augmentation). The copies learn the student's faces: the recipe gives its [run], not its [data].
    Cached in ``work/teachers/`` under the recipe's and the data's fingerprints; returns the probabilities and
    their record for the card."""
    import hashlib

    from ferlab.data.prepare import training_folds, without_training_faces
    from ferlab.models import load_model

    recipe, recipe_file = spec_for(teacher)
    if recipe.run is None or recipe.run.get("train", {}).get("distill"):
        raise FerlabError(f"train.distill.cross_fit: teacher {teacher} ({recipe_file}) is not a trained recipe "
                          f"without a teacher of its own; name a zoo spec with a [run], e.g. fast-fer7")
    recipe_sha = hashlib.sha256(json.dumps(recipe.run, sort_keys=True).encode()).hexdigest()
    cache = work / "teachers" / f"{recipe.name}-crossfit{folds}-s{seed}-{recipe_sha[:12]}-{prepared.fingerprint}"
    x, y = prepared.arrays("train")
    fold_of = training_folds(prepared, folds, seed)
    if (cache / "probabilities.npy").is_file():
        probs = np.load(cache / "probabilities.npy", allow_pickle=False)
        per_fold = json.loads((cache / "folds.json").read_text())
    else:
        probs, per_fold = np.zeros((len(x), len(prepared.classes)), np.float32), []
        for i in range(folds):
            fold, held_out = f"fold{i + 1}of{folds}", fold_of == i
            name, n_out = f"{recipe.name}-{fold}", int(held_out.sum())
            subset = without_training_faces(prepared, held_out, work / "data" / f"{prepared.path.name}-{fold}",
                                            {"fold": i + 1, "folds": folds, "seed": seed})
            stage(f"training (or resuming) the teacher {name} ({len(x) - n_out} faces; it answers the other {n_out})")
            run, _ = _train(recipe.model_copy(update={"name": name}), subset, work, weights, on_epoch, stage)
            views = Views([load_model(RunDir(run).model_file)], recipe.tta, Faces(subset, list(subset.classes), None))
            x_val, y_val = subset.arrays("val")
            temperature = fit_temperature(views.raw(x_val), y_val, transform=views.shipped_output)
            probs[held_out] = views.shipped_output(apply_temperature(views.raw(x[held_out]), temperature))
            per_fold.append({"run": name, "train_faces": len(x) - n_out, "held_out_faces": n_out,
                             "temperature": float(temperature),
                             "held_out_accuracy": float((probs[held_out].argmax(1) == y[held_out]).mean())})
        with atomic_dir(cache, overwrite=True) as tmp:
            np.save(tmp / "probabilities.npy", probs, allow_pickle=False)
            (tmp / "folds.json").write_text(json.dumps(per_fold, indent=2) + "\n")
    record = {"teacher": teacher, "cross_fit": folds, "fold_seed": seed, "file": f"{recipe.name}'s [run]",
              "file_sha256": recipe_sha, "folds": per_fold, "train_faces": len(x),
              "probabilities_sha256": hashlib.sha256(probs.tobytes()).hexdigest(),
              "teacher_train_accuracy": float((probs.argmax(1) == y).mean())}
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
    distill = cfg.train.distill
    if distill is not None:
        teacher_probs, teacher = (
            cross_fitted_probabilities(distill.teacher, distill.cross_fit, cfg.train.seed, prepared, work, weights,
                                       on_epoch, stage)
            if distill.cross_fit else teacher_probabilities(distill.teacher, prepared, work, stage))
        teacher.update(weight=distill.weight, temperature=distill.temperature)
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


# ------------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class BuildPlan:
    """What a spec is built from: the spec itself, the trained spec behind it (itself, or a derived spec's
    parent) and the trained specs whose networks make its classifier (one, or an ensemble's members)."""

    spec: ZooSpec
    spec_file: Path
    trained_spec: ZooSpec
    members: list[ZooSpec]

    @property
    def derived(self) -> bool:
        return self.spec.derive is not None

    @property
    def single(self) -> bool:
        return len(self.members) == 1


def plan_build(spec: ZooSpec, spec_file: Path) -> BuildPlan:
    """Resolve a derived spec's parent and the trained members (no data, no training yet)."""
    trained_spec, trained_file = spec, spec_file
    if spec.derive is not None:
        trained_spec, trained_file = spec_for(spec.derive.parent, beside=spec_file.parent)
        if trained_spec.derive is not None:
            raise FerlabError(f"[derive] parent {trained_spec.name}: derive from a trained model or an ensemble, "
                              f"not a derived one")
    return BuildPlan(spec, spec_file, trained_spec, trained_members(trained_spec, trained_file))


def destination(spec: ZooSpec, out: str | os.PathLike | None, overwrite: bool) -> Path:
    """``out/NAME`` (default: the installed zoo), checked before any work: absent (or ``overwrite``), writable."""
    out_root = Path(out) if out is not None else MODELS_DIR
    target = out_root / spec.name
    if target.exists() and not overwrite:
        raise FerlabError(f"--out {target}: already exists; pass --overwrite to rebuild it, or choose another --out")
    writable = next((p for p in (out_root, *out_root.parents) if p.exists()), Path("."))
    if not os.access(writable, os.W_OK):
        raise FerlabError(f"--out {out_root}: not writable (an installed package's folder?); give --out a folder of yours")
    return target


# --------------------------------------------------------------------------- stage 1: prepare the data
def prepare_data(plan: BuildPlan, source: str, work: Path, ferplus: str | os.PathLike | None, stage) -> PreparedData:
    """The members' faces, prepared into ``work/data/...`` once and reused after (:func:`_prepared`)."""
    return _prepared(plan.members[0], source, work, stage, str(ferplus) if ferplus is not None else None)


# --------------------------------------------------------------------------- stage 2: train, or derive
@dataclass(frozen=True)
class Trained:
    """The members' training runs (``work/runs/NAME``), their Keras models (outputs: the data's classes) and
    their distillation teachers' records, by member name."""

    runs: list[RunDir]
    models: list
    teachers: dict[str, dict]


def train_networks(plan: BuildPlan, prepared: PreparedData, work: Path, weights: str | None, on_epoch,
                   stage) -> Trained:
    """Train each member, or resume it where it stopped (a finished run is only loaded)."""
    from ferlab.models import load_model

    runs, teachers = [], {}
    for member in plan.members:
        stage(f"training (or resuming) {member.name}")
        run, teacher = _train(member, prepared, work, weights, on_epoch, stage)
        runs.append(RunDir(run))
        if teacher is not None:
            teachers[member.name] = teacher
    return Trained(runs, [load_model(run.model_file) for run in runs], teachers)


@dataclass(frozen=True)
class Faces:
    """The prepared faces as the shipped model answers them: its classes (a derived model's coarser ones,
    ``groups`` listing the parent class indices merged into each; None for a trained model) and each split
    relabelled to them (faces of a dropped class left out)."""

    prepared: PreparedData
    classes: list[str]
    groups: list[list[int]] | None

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.prepared.arrays(name)
        if self.groups is None:
            return x, y
        keep, merged = relabel(np.asarray(y), self.groups)
        return x[keep], merged

    def merge(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities over the data's classes -> over the model's (what the graph's merge layer does)."""
        return probs if self.groups is None else merge_probabilities(probs, self.groups)


def derive_classes(plan: BuildPlan, prepared: PreparedData) -> Faces:
    """The model's classes: the data's, or for a derived spec its protocol's, merged from the parent's."""
    if not plan.derived:
        return Faces(prepared, list(prepared.classes), None)
    return Faces(prepared, *merge_groups(list(prepared.classes), plan.spec.derive.protocol))


# ------------------------------------------------------------------------------------ stage 3: calibrate
@dataclass(frozen=True)
class Views:
    """The trained networks' probabilities (the data's classes) on each view the shipped graph averages: each
    member, each image or its mirror. Temperature scaling works face by face and view by view, so T is
    fitted through the mean (:meth:`shipped_output`)."""

    models: list
    tta: str
    faces: Faces

    def raw(self, x: np.ndarray) -> np.ndarray:
        """(views x N, C), member-major."""
        images = [x] if self.tta == "none" else [x, mirrored(np.asarray(x).reshape(-1, *FACE_SHAPE))]
        return np.concatenate([_keras_predict(model, v) for model in self.models for v in images])

    def of_members(self, probs: np.ndarray, keep: list[int]) -> tuple[Views, np.ndarray]:
        """These views restricted to the members ``keep``, and their rows of ``probs`` (from :meth:`raw`)."""
        per_member = probs.reshape(len(self.models), -1, probs.shape[1])  # (members, views x N, C)
        return (Views([self.models[i] for i in keep], self.tta, self.faces),
                per_member[keep].reshape(-1, probs.shape[1]))

    def shipped_output(self, probs: np.ndarray) -> np.ndarray:
        """(views x N, C) -> what the shipped graph outputs: the views' mean, merged to the model's classes."""
        n_views = len(self.models) * (1 if self.tta == "none" else 2)
        return self.faces.merge(probs.reshape(n_views, -1, probs.shape[1]).mean(0))


@dataclass(frozen=True)
class Calibrated:
    """The shipped Keras graph (temperature folded in, test-time augmentation, ensemble mean, class merge)
    and what calibrating it measured on the validation faces."""

    temperature: float
    shipped: object  # keras.Model
    views: Views
    val_raw: np.ndarray  # the networks' probabilities on the validation views, before the temperature
    reference_val: np.ndarray  # the shipped graph's on the validation faces: what each file is checked against


def calibrate(plan: BuildPlan, trained: Trained, faces: Faces, stage) -> Calibrated:
    """Fit one temperature on the validation faces and build the graph every file is exported from."""
    views = Views(trained.models, plan.spec.tta, faces)
    x_val, y_val = faces.split("val")
    stage("fitting the temperature on the validation faces")
    val_raw = views.raw(x_val)
    temperature = fit_temperature(val_raw, y_val, transform=views.shipped_output)
    shipped = shipped_graph(plan, trained.models, temperature, faces)
    return Calibrated(temperature, shipped, views, val_raw, _keras_predict(shipped, x_val))


def member_validation(plan: BuildPlan, trained: Trained, faces: Faces, stage) -> dict:
    """Validation accuracy of the networks as the spec combines them (test-time augmentation, ensemble mean,
    class merge, a temperature fitted for that combination) and, for an ensemble, of the ensemble without
    each member and of each member alone: the evidence that fixes the members before the test faces are read."""
    x_val, y_val = faces.split("val")
    stage("the members on the validation faces")
    views = Views(trained.models, plan.spec.tta, faces)
    raw = views.raw(x_val)

    def accuracy(keep: list[int]) -> float:
        subset, probs = views.of_members(raw, keep)
        temperature = fit_temperature(probs, y_val, transform=subset.shipped_output)
        return float((subset.shipped_output(apply_temperature(probs, temperature)).argmax(1) == y_val).mean())

    everyone = list(range(len(plan.members)))
    result = {"name": plan.spec.name, "faces": len(y_val), "accuracy": accuracy(everyone)}
    if not plan.single:
        result["without"] = {m.name: accuracy([j for j in everyone if j != i]) for i, m in enumerate(plan.members)}
        result["alone"] = {m.name: accuracy([i]) for i, m in enumerate(plan.members)}
    return result


def shipped_graph(plan: BuildPlan, models: list, temperature: float, faces: Faces):
    """The members' networks with T folded in, each with the spec's test-time augmentation, averaged (an
    ensemble) and merged to a derived model's classes: one Keras graph."""
    calibrated = [fold_temperature(model, temperature) for model in models]
    if plan.spec.tta == "flip":
        calibrated = [with_flip_average(model) for model in calibrated]
    shipped = calibrated[0] if len(calibrated) == 1 else with_mean(calibrated, [m.name for m in plan.members])
    if faces.groups is not None:
        shipped = with_merge(shipped, faces.groups, len(faces.prepared.classes))
    return shipped


# ------------------------------------------------------------------------------- stages 4 and 5: export, test
@dataclass(frozen=True)
class Exported:
    """One file written into the model's folder, with its sidecar, and its runtime classifier."""

    kind: str
    path: Path
    bytes: int
    classifier: object  # FaceClassifier
    parity: dict  # against the shipped Keras graph on the validation faces


def representative_faces(faces: Faces) -> np.ndarray:
    """The int8 calibration faces: REPRESENTATIVE_IMAGES training faces (as `ferlab export`), the same on every
    rebuild."""
    x_train, _ = faces.split("train")
    n = min(REPRESENTATIVE_IMAGES, len(x_train))
    return x_train[np.sort(np.random.default_rng(1).choice(len(x_train), n, replace=False))]


def export_file(plan: BuildPlan, kind: str, calibrated: Calibrated, faces: Faces, representative: np.ndarray,
                folder: Path, stage) -> Exported:
    """Convert the shipped graph to one file kind, write it and its sidecar, and check it against Keras on
    the validation faces (``ferlab export``'s converter, sidecar and parity check)."""
    fmt, quantize = FILE_EXPORTS[kind]
    stage(f"exporting {ZOO_FILES[kind]}")
    blob, facts = convert(calibrated.shipped, fmt, quantize, representative if quantize == "int8" else None)
    path = folder / ZOO_FILES[kind]
    path.write_bytes(blob)
    clf = open_exported(path, fmt, faces.classes)
    x_val, y_val = faces.split("val")
    agreement = parity(calibrated.reference_val, _predict(clf.predict, x_val).astype(np.float32), np.asarray(y_val))
    write_sidecar(path, classes=faces.classes, fmt=fmt, quantize=quantize, runtime=FORMATS.get(fmt).runtime,
                  input=input_spec(clf), facts=facts, calibrated=True, zoo_model=plan.spec.name)
    return Exported(kind, path, len(blob), clf, agreement)


@dataclass(frozen=True)
class Evaluated:
    """A file's probabilities on the test faces and its row of the card."""

    probs: np.ndarray
    row: CardFile


def evaluate_file(exported: Exported, faces: Faces, latency_runs: int, stage) -> Evaluated:
    """One file's accuracy on the test faces (measured once, chosen on nothing) and its latency on one face."""
    fmt, quantize = FILE_EXPORTS[exported.kind]
    x_test, y_test = faces.split("test")
    stage(f"testing {exported.path.name} on {len(x_test)} test faces")
    probs = _predict(exported.classifier.predict, x_test)
    latency = exported.classifier.latency_ms(1, runs=latency_runs)
    row = CardFile(file=exported.path.name, format=fmt, quantize=quantize, bytes=exported.bytes,
                   runtime=FORMATS.get(fmt).runtime, latency_ms_1_face=latency,
                   test_accuracy=float((probs.argmax(1) == y_test).mean()),
                   validation_parity={k: exported.parity[k] for k in ("top1_agreement", "max_abs_diff")})
    return Evaluated(probs, row)


# ----------------------------------------------------------------------------------------- stage 6: the card
def model_card(plan: BuildPlan, trained: Trained, faces: Faces, calibrated: Calibrated, tested: dict[str, Evaluated],
               weights: str | None, started: float) -> ZooCard:
    """The card: every number measured above, the recipe, and how to reproduce the build."""
    spec = plan.spec
    member_metrics = {member.name: run.ok_metrics() for member, run in zip(plan.members, trained.runs)}
    x_test, _ = faces.split("test")
    test_raw = calibrated.views.shipped_output(calibrated.views.raw(x_test))  # the float model before T ...
    test_calibrated = _keras_predict(calibrated.shipped, x_test)  # ... and after
    default_probs = tested[spec.default_file].probs
    return ZooCard(
        name=spec.name, summary=spec.summary, role=spec.role, default=spec.default, classes=faces.classes,
        default_file=spec.default_file, files={kind: t.row for kind, t in tested.items()}, tta=spec.tta,
        data=_card_data(plan, faces), recipe=_recipe(plan, faces),
        distillation=_distillation(plan, trained), validation=_validation(plan, calibrated, faces),
        selection={**_per_member(plan, member_metrics, _selection),
                   "rule": "the epoch with the best validation accuracy; the test faces choose nothing"},
        test=_test(faces, default_probs, test_calibrated, spec.default_file),
        calibration=_calibration(calibrated, faces, test_raw, test_calibrated, default_probs),
        model={**_per_member(plan, member_metrics, _architecture), "params": int(calibrated.shipped.count_params()),
               "flops": _total([m.get("model", {}).get("flops") for m in member_metrics.values()])},
        command=_command(spec, plan.spec_file, weights, plan.members[0].data.labels),
        spec=plan.spec_file.read_text() if plan.spec_file.is_file() else "",
        built=_built(started))


def _card_data(plan: BuildPlan, faces: Faces) -> CardData:
    meta = faces.prepared.meta
    return CardData(source=meta["source"]["name"],
                    protocol=plan.spec.derive.protocol if plan.derived else meta["protocol"]["name"],
                    split=meta["config"]["split"], fingerprint=faces.prepared.fingerprint,
                    counts={s: len(faces.split(s)[1]) for s in ("train", "val", "test")},
                    dropped={k: v for k, v in meta.get("dropped", {}).items() if v},
                    licence=plan.members[0].data.licence)


def _recipe(plan: BuildPlan, faces: Faces) -> dict:
    """The trained recipe (a [run], or each [ensemble] member's) and the data; a derived spec's says so."""
    trained = ({"run": plan.trained_spec.run} if plan.trained_spec.run is not None
               else {"ensemble": {m.name: m.run for m in plan.members}})
    data = plan.members[0].data.record()
    if not plan.derived:
        return {**trained, "data": data}
    parent_classes = faces.prepared.classes
    return {"derive": plan.spec.derive.model_dump(), **{f"parent_{k}": v for k, v in trained.items()},
            "data": data, "groups": {c: [parent_classes[i] for i in g] for c, g in zip(faces.classes, faces.groups)}}


def _distillation(plan: BuildPlan, trained: Trained) -> dict | None:
    """The teachers' records: one member's record, or member name -> record for an ensemble; None untaught."""
    if not trained.teachers:
        return None
    return trained.teachers if not plan.single else trained.teachers[plan.members[0].name]


def _validation(plan: BuildPlan, calibrated: Calibrated, faces: Faces) -> dict:
    """The shipped graph's validation accuracy and, for an ensemble, each member's alone (with the spec's
    test-time augmentation): what the ensemble adds."""
    _, y_val = faces.split("val")
    validation = {"faces": len(y_val), "accuracy": float((calibrated.reference_val.argmax(1) == y_val).mean())}
    if not plan.single:
        alone = {m.name: calibrated.views.of_members(calibrated.val_raw, [i]) for i, m in enumerate(plan.members)}
        validation["members"] = {name: float((view.shipped_output(probs).argmax(1) == y_val).mean())
                                 for name, (view, probs) in alone.items()}
    return validation


def _per_member(plan: BuildPlan, member_metrics: dict[str, dict], part: Callable[[dict], dict]) -> dict:
    """``part`` of the one network's metrics, or ``{"members": {name: part}}`` for an ensemble."""
    if plan.single:
        return part(member_metrics[plan.members[0].name])
    return {"members": {name: part(m) for name, m in member_metrics.items()}}


def _test(faces: Faces, default_probs: np.ndarray, test_calibrated: np.ndarray, default_file: str) -> dict:
    _, y_test = faces.split("test")
    metrics = classification_metrics(y_test, default_probs, faces.classes)
    return {**{k: metrics[k] for k in ("n", "accuracy", "accuracy_ci95", "loss", "macro_precision", "macro_recall",
                                       "macro_f1", "weighted_f1", "per_class", "confusion")},
            "file": default_file, "keras_float_accuracy": float((test_calibrated.argmax(1) == y_test).mean())}


def _calibration(calibrated: Calibrated, faces: Faces, test_raw: np.ndarray, test_calibrated: np.ndarray,
                 default_probs: np.ndarray) -> CardCalibration:
    _, y_val = faces.split("val")
    _, y_test = faces.split("test")
    return CardCalibration(
        temperature=round(calibrated.temperature, 4), fitted_on=f"{len(y_val)} validation faces", ece_bins=ECE_BINS,
        runtime="Keras float32 (before: without the temperature, after: with it)",
        val_nll_before=negative_log_likelihood(calibrated.views.shipped_output(calibrated.val_raw), y_val),
        val_nll_after=negative_log_likelihood(calibrated.reference_val, y_val),
        test_ece_before=expected_calibration_error(test_raw, y_test),
        test_ece_after=expected_calibration_error(test_calibrated, y_test),
        test_nll_before=negative_log_likelihood(test_raw, y_test),
        test_nll_after=negative_log_likelihood(test_calibrated, y_test),
        test_ece_default_file=expected_calibration_error(default_probs, y_test))


def _built(started: float) -> CardBuilt:
    from importlib.metadata import version

    return CardBuilt(ferlab_version=__version__, keras_version=version("keras"), machine=machine_description(),
                     python=platform.python_version(), date=time.strftime("%Y-%m-%d"),
                     minutes=round((time.perf_counter() - started) / 60, 1))


# ------------------------------------------------------------------------------------------- the pipeline
def build_model(name_or_file: str | os.PathLike, *, source: str, work: str | os.PathLike,
                out: str | os.PathLike | None = None, weights: str | None = None, overwrite: bool = False,
                ferplus: str | os.PathLike | None = None,
                on_stage: Callable[[str], None] | None = None, on_epoch: Callable[[dict], None] | None = None,
                latency_runs: int = 50, validation_only: bool = False) -> dict:
    """Build one zoo model into ``out/NAME`` (default: the installed package's zoo) and return its card: the
    stages of the module's notes, in order. ``validation_only``: train (or resume), then return
    :func:`member_validation`'s record instead (validation faces only), writing no model folder."""
    import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before anything needs it)

    stage = on_stage or (lambda _text: None)
    spec, spec_file = spec_for(name_or_file)
    work = Path(work).resolve()
    target = None if validation_only else destination(spec, out, overwrite)
    started = time.perf_counter()
    plan = plan_build(spec, spec_file)
    prepared = prepare_data(plan, source, work, ferplus, stage)
    trained = train_networks(plan, prepared, work, weights, on_epoch, stage)
    faces = derive_classes(plan, prepared)
    if validation_only:
        return member_validation(plan, trained, faces, stage)
    calibrated = calibrate(plan, trained, faces, stage)
    representative = representative_faces(faces)
    with atomic_dir(target, overwrite=True) as staging:  # existence was checked above, before any work
        tested = {}
        for kind in spec.files:
            exported = export_file(plan, kind, calibrated, faces, representative, staging, stage)
            tested[kind] = evaluate_file(exported, faces, latency_runs, stage)
        stage("writing the card")
        card = write_card(staging, model_card(plan, trained, faces, calibrated, tested, weights, started))
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
