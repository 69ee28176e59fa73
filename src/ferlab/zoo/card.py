"""A zoo model's card: its schema (:class:`ZooCard`), its writer (:func:`write_card`) and its Markdown.

``card.json`` is the one source of every number the card states; ``card.md`` is rendered from it
(:func:`render_card`). Design notes:

- :class:`ZooCard` owns the card's keys and their order (the order the build returns them in; on disk
  the JSON's keys are sorted). Its sections with a fixed form (the files, the data, the calibration, the
  build) are typed with ``extra="forbid"``; those whose form depends on the recipe (a trained network,
  an ensemble, a derivation: ``recipe``, ``selection``, ``model``, ``validation``) or on the metrics
  module (``test``) stay mappings, owned by the code that fills them.
- A field left at None is absent from the JSON (``distillation`` for a model taught by no teacher), so a
  model built before a field existed rebuilds to the same card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ferlab.io import atomic_write_json, atomic_write_text

LIMITS = ("FER2013's faces are low-resolution, mostly frontal web images with noisy labels (FER+ relabelled "
          "about a third of them); accuracy on other corpora, cameras, ages and skin tones will differ and was "
          "not measured here. Expression is not emotion: a label says what a face shows, not what its owner "
          "feels.")


# ---------------------------------------------------------------------------------------------- schema
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileParity(_Section):
    """A shipped file against the calibrated Keras model on the validation faces."""

    top1_agreement: float
    max_abs_diff: float


class CardFile(_Section):
    """One shipped file: what it is, its size and speed, and its accuracy on the test faces."""

    file: str
    format: str
    quantize: str
    bytes: int
    runtime: str
    latency_ms_1_face: float
    test_accuracy: float
    validation_parity: FileParity


class CardData(_Section):
    """The faces the model learned from and was tested on."""

    source: str
    protocol: str
    split: dict  # the prepared data's split config, as its metadata records it
    fingerprint: str
    counts: dict[str, int]  # faces per split (after a derivation's relabelling)
    dropped: dict[str, int]  # faces dropped before splitting, by reason (non-zero only)
    licence: str


class CardCalibration(_Section):
    """The temperature folded into the classifier, and the calibration before and after it."""

    temperature: float
    fitted_on: str
    ece_bins: int
    runtime: str
    val_nll_before: float
    val_nll_after: float
    test_ece_before: float
    test_ece_after: float
    test_nll_before: float
    test_nll_after: float
    test_ece_default_file: float


class CardBuilt(_Section):
    """Which software built the files, on which machine, when, in how long."""

    ferlab_version: str
    keras_version: str
    machine: str
    python: str
    date: str
    minutes: float


class ZooCard(_Section):
    """A zoo model's card.json, key for key (see the module's notes)."""

    name: str
    summary: str
    role: Literal["fast", "accurate"]
    default: bool
    classes: list[str]
    default_file: str
    files: dict[str, CardFile]  # file kind -> its row
    tta: str
    data: CardData
    recipe: dict
    distillation: dict | None = None  # one teacher's record, or member name -> record for an ensemble
    validation: dict
    selection: dict
    test: dict
    calibration: CardCalibration
    model: dict
    command: str
    spec: str
    built: CardBuilt

    def dump(self) -> dict:
        return self.model_dump(exclude_none=True)


def write_card(folder: Path, card: ZooCard) -> dict:
    """Write ``card.json`` and ``card.md`` into a model's folder (atomically, each); returns the card's dict."""
    from ferlab.zoo import CARD_JSON, CARD_MD

    record = card.dump()
    atomic_write_json(folder / CARD_JSON, record)
    atomic_write_text(folder / CARD_MD, render_card(record))
    return record


# ------------------------------------------------------------------------------------------- Markdown
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(str(c) for c in row) + " |" for row in rows]]


def render_card(card: dict) -> str:
    """card.json's content -> card.md."""
    test = card["test"]
    lines = [
        f"# {card['name']}", "", card["summary"], "", _intro(card), "",
        "## Results on the test faces", "", _headline(card), "", *_files(card), "",
        "Per class (default file):", "", *_per_class(test), "",
        "Confusion matrix (rows: true class, columns: predicted):", "", *_confusion(card), "",
        "## Calibration", "", _calibration(card), "",
        "## Data", "", _data(card["data"]), "", f"**Licence of the training data.** {card['data']['licence']}", "",
        "## Model and recipe", "", _recipe(card), "",
        "Spec:", "", "```toml", card["spec"].rstrip(), "```", "",
        "Reproduce (FER2013 as Kaggle image folders at `path/to/fer2013`):", "", "```bash", card["command"], "```", "",
        _provenance(card["built"]), "", "## Limits", "", LIMITS, "",
    ]
    return "\n".join(lines)


def _intro(card: dict) -> str:
    flip = (" The graph averages each face's probabilities with its mirror image's (flip test-time "
            "augmentation), so a face costs two passes of " + ("each network." if "members" in card["model"]
                                                               else "the network."))
    return (f"Classes ({len(card['classes'])}): {', '.join(card['classes'])}. Input: a 48x48 grayscale face crop, "
            f"raw pixels 0-255, framed like FER2013's (ferlab's detectors crop it so). Output: calibrated "
            f"probabilities." + (flip if card.get("tta") == "flip" else ""))


def _default_file(card: dict) -> dict:
    return card["files"][card["default_file"]]


def _headline(card: dict) -> str:
    test = card["test"]
    lo, hi = test["accuracy_ci95"]
    return (f"Default file `{_default_file(card)['file']}`: accuracy **{_pct(test['accuracy'])}** (95% bootstrap CI "
            f"{_pct(lo)}-{_pct(hi)}) on {test['n']} test faces, macro F1 {test['macro_f1']:.3f}, loss "
            f"{test['loss']:.3f}. Each number below was measured once on the test faces; nothing was chosen "
            f"on them.")


def _files(card: dict) -> list[str]:
    files = _table(["file", "runtime", "bytes", "test accuracy", "ms per face (1 face)", "agreement with Keras (val)"],
                   [[f"`{f['file']}`", f["runtime"], f"{f['bytes']:,}", _pct(f["test_accuracy"]),
                     f"{f['latency_ms_1_face']:.3f}", _pct(f["validation_parity"]["top1_agreement"])]
                    for f in card["files"].values()])
    if "keras_float_accuracy" in card["test"]:
        keras = _pct(card["test"]["keras_float_accuracy"])
        files += ["", f"The float Keras model these files were exported from: {keras} on the same faces."]
    return files


def _per_class(test: dict) -> list[str]:
    return _table(["class", "precision", "recall", "F1", "support"],
                  [[c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
                   for c, m in test["per_class"].items()])


def _confusion(card: dict) -> list[str]:
    return _table(["true \\ predicted", *card["classes"]],
                  [[c, *row] for c, row in zip(card["classes"], card["test"]["confusion"])])


def _calibration(card: dict) -> str:
    cal = card["calibration"]
    return (f"Temperature T = {cal['temperature']} fitted on {cal['fitted_on']} (minimum negative "
            f"log-likelihood there: {cal['val_nll_before']:.4f} at T = 1, {cal['val_nll_after']:.4f} at T) and "
            f"folded into the classifier. On the test faces, the float model: expected calibration error "
            f"({cal['ece_bins']} bins) **{_pct(cal['test_ece_before'])} before, {_pct(cal['test_ece_after'])} "
            f"after**, negative log-likelihood {cal['test_nll_before']:.4f} before, "
            f"{cal['test_nll_after']:.4f} after; the shipped default file `{_default_file(card)['file']}`: ECE "
            f"**{_pct(cal['test_ece_default_file'])}**.")


def _data(data: dict) -> str:
    split = data["split"]
    counts = ", ".join(f"{k} {v:,}" for k, v in data["counts"].items())
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in data.get("dropped", {}).items())
    return (f"Source: {data['source']}, protocol {data['protocol']}, split {split.get('kind')} (seed "
            f"{split.get('seed')}, validation fraction {split.get('val_fraction')}, leak-free: "
            f"{not split.get('allow_leaks', False)}), fingerprint `{data['fingerprint']}`. Faces: {counts}."
            + (f" Dropped before splitting: {dropped}." if dropped else ""))


def _kept(selection: dict) -> str:
    """Which epoch a run kept and its accuracies there."""
    return (f"epoch {selection['best_epoch']} of {selection['epochs']}, validation accuracy "
            f"{_pct(selection['val_accuracy'])}, training accuracy {_pct(selection.get('train_accuracy'))}")


def _flops(model: dict) -> str:
    return f", {model['flops'] / 1e6:.0f} MFLOPs per face" if model.get("flops") else ""


def _recipe(card: dict) -> str:
    recipe = _ensemble(card) if "members" in card["model"] else _network(card)
    return recipe + _distillation(card)


def _network(card: dict) -> str:
    model, sel = card["model"], card["selection"]
    return (f"{model.get('backbone')} with {model.get('pooling')} pooling at {model.get('input_size')} px, "
            f"{model['params']:,} parameters{_flops(model)}. Selection: {sel['rule']} ({_kept(sel)}).")


def _ensemble(card: dict) -> str:
    """Each member's network, then the whole, and each member's validation accuracy against the ensemble's."""
    model, sel = card["model"], card["selection"]
    parts = "; ".join(
        f"{name}: {m.get('backbone')} with {m.get('pooling')} pooling at {m.get('input_size')} px"
        + (f", {m['params']:,} parameters" if m.get("params") else "")
        + (f", {m['flops'] / 1e6:.0f} MFLOPs" if m.get("flops") else "") + f" ({_kept(sel['members'][name])})"
        for name, m in model["members"].items())
    val = card.get("validation", {})
    alone = ", ".join(f"{name} {_pct(acc)}" for name, acc in val.get("members", {}).items())
    return (f"An ensemble of {len(model['members'])} networks trained on the same faces, their calibrated "
            f"probabilities averaged in one graph: {parts}. In all {model['params']:,} parameters{_flops(model)}. "
            f"Selection, for each network: {sel['rule']}."
            + (f" Accuracy on the {val['faces']:,} validation faces (float models, with the test-time "
               f"augmentation): {alone} alone, {_pct(val['accuracy'])} together." if alone else ""))


def _distillation(card: dict) -> str:
    teachers = card.get("distillation")
    if not teachers:
        return ""
    teachers = teachers if "teacher" not in teachers else {card["name"]: teachers}  # one record, or one per member
    return " " + " ".join(
        f"{'Distilled' if len(teachers) == 1 else name + ': distilled'} from {t['teacher']} ({t['file']}, SHA-256 "
        f"{t['file_sha256'][:12]}){_cross_fit(t)}: the target was {t['weight']:g} x its probabilities softened at "
        f"temperature {t['temperature']:g} plus {1 - t['weight']:g} x its own target (the label, or the vote "
        f"distribution), the teacher's probabilities computed once on the {t['train_faces']:,} training faces "
        f"(SHA-256 {t['probabilities_sha256'][:12]}; it gets {_pct(t['teacher_train_accuracy'])} of them right)."
        for name, t in teachers.items())


def _cross_fit(teacher: dict) -> str:
    if not teacher.get("cross_fit"):
        return ""
    folds = teacher["folds"]
    return (f", cross-fitted: its recipe trained {len(folds)} times, each copy without one of {len(folds)} folds "
            f"of the training faces (whole duplicate groups, seed {teacher['fold_seed']}) and answering only that "
            f"fold, calibrated on the validation faces, so no face's probabilities come from a network that "
            f"trained on it (held-out accuracy per fold: "
            f"{', '.join(_pct(f['held_out_accuracy']) for f in folds)})")


def _provenance(built: dict) -> str:
    return (f"Built with ferlab {built['ferlab_version']}, Keras {built['keras_version']}, Python "
            f"{built['python']} on {built['machine']}, {built['date']}; latencies are from that machine.")
