"""A zoo model's card as Markdown, from its card.json (the one source of every number in it)."""

from __future__ import annotations


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(str(c) for c in row) + " |" for row in rows]]


def render_card(card: dict) -> str:
    test, cal, data, sel, model = card["test"], card["calibration"], card["data"], card["selection"], card["model"]
    lo, hi = test["accuracy_ci95"]
    default = card["files"][card["default_file"]]
    split = data["split"]
    intro = (f"Classes ({len(card['classes'])}): {', '.join(card['classes'])}. Input: a 48x48 grayscale face crop, "
             f"raw pixels 0-255, framed like FER2013's (ferlab's detectors crop it so). Output: calibrated "
             f"probabilities."
             + (" The graph averages each face's probabilities with its mirror image's (flip test-time "
                "augmentation), so a face costs two passes of " + ("each network." if "members" in card["model"]
                                                                   else "the network.")
                if card.get("tta") == "flip" else ""))
    headline = (f"Default file `{default['file']}`: accuracy **{_pct(test['accuracy'])}** (95% bootstrap CI "
                f"{_pct(lo)}-{_pct(hi)}) on {test['n']} test faces, macro F1 {test['macro_f1']:.3f}, loss "
                f"{test['loss']:.3f}. Each number below was measured once on the test faces; nothing was chosen "
                f"on them.")
    files = _table(["file", "runtime", "bytes", "test accuracy", "ms per face (1 face)", "agreement with Keras (val)"],
                   [[f"`{f['file']}`", f["runtime"], f"{f['bytes']:,}", _pct(f["test_accuracy"]),
                     f"{f['latency_ms_1_face']:.3f}", _pct(f["validation_parity"]["top1_agreement"])]
                    for f in card["files"].values()])
    if "keras_float_accuracy" in test:
        files += ["", f"The float Keras model these files were exported from: {_pct(test['keras_float_accuracy'])} on "
                      f"the same faces."]
    per_class = _table(["class", "precision", "recall", "F1", "support"],
                       [[c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
                        for c, m in test["per_class"].items()])
    confusion = _table(["true \\ predicted", *card["classes"]],
                       [[c, *row] for c, row in zip(card["classes"], test["confusion"])])
    calibration = (f"Temperature T = {cal['temperature']} fitted on {cal['fitted_on']} (minimum negative "
                   f"log-likelihood there: {cal['val_nll_before']:.4f} at T = 1, {cal['val_nll_after']:.4f} at T) and "
                   f"folded into the classifier. On the test faces, the float model: expected calibration error "
                   f"({cal['ece_bins']} bins) **{_pct(cal['test_ece_before'])} before, {_pct(cal['test_ece_after'])} "
                   f"after**, negative log-likelihood {cal['test_nll_before']:.4f} before, "
                   f"{cal['test_nll_after']:.4f} after; the shipped default file `{default['file']}`: ECE "
                   f"**{_pct(cal['test_ece_default_file'])}**.")
    counts = ", ".join(f"{k} {v:,}" for k, v in data["counts"].items())
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in data.get("dropped", {}).items())
    data_text = (f"Source: {data['source']}, protocol {data['protocol']}, split {split.get('kind')} (seed "
                 f"{split.get('seed')}, validation fraction {split.get('val_fraction')}, leak-free: "
                 f"{not split.get('allow_leaks', False)}), fingerprint `{data['fingerprint']}`. Faces: {counts}."
                 + (f" Dropped before splitting: {dropped}." if dropped else ""))
    flops = f", {model['flops'] / 1e6:.0f} MFLOPs per face" if model.get("flops") else ""

    def kept(s: dict) -> str:
        return (f"epoch {s['best_epoch']} of {s['epochs']}, validation accuracy {_pct(s['val_accuracy'])}, training "
                f"accuracy {_pct(s.get('train_accuracy'))}")

    if "members" in model:  # an ensemble: each member's network, then the whole
        parts = "; ".join(
            f"{name}: {m.get('backbone')} with {m.get('pooling')} pooling at {m.get('input_size')} px"
            + (f", {m['params']:,} parameters" if m.get("params") else "")
            + (f", {m['flops'] / 1e6:.0f} MFLOPs" if m.get("flops") else "") + f" ({kept(sel['members'][name])})"
            for name, m in model["members"].items())
        val = card.get("validation", {})
        alone = ", ".join(f"{name} {_pct(acc)}" for name, acc in val.get("members", {}).items())
        recipe = (f"An ensemble of {len(model['members'])} networks trained on the same faces, their calibrated "
                  f"probabilities averaged in one graph: {parts}. In all {model['params']:,} parameters{flops}. "
                  f"Selection, for each network: {sel['rule']}."
                  + (f" Accuracy on the {val['faces']:,} validation faces (float models, with the test-time "
                     f"augmentation): {alone} alone, {_pct(val['accuracy'])} together." if alone else ""))
    else:
        recipe = (f"{model.get('backbone')} with {model.get('pooling')} pooling at {model.get('input_size')} px, "
                  f"{model['params']:,} parameters{flops}. Selection: {sel['rule']} ({kept(sel)}).")
    teachers = card.get("distillation")
    if teachers:
        teachers = teachers if "teacher" not in teachers else {card["name"]: teachers}
        recipe += " " + " ".join(
            f"{'' if len(teachers) == 1 else name + ': '}distilled from {t['teacher']} ({t['file']}, SHA-256 "
            f"{t['file_sha256'][:12]}): the target was {t['weight']:g} x its probabilities softened at temperature "
            f"{t['temperature']:g} plus {1 - t['weight']:g} x its own target (the label, or the vote distribution), the teacher's probabilities "
            f"computed once on the {t['train_faces']:,} training faces (SHA-256 {t['probabilities_sha256'][:12]}; "
            f"it gets {_pct(t['teacher_train_accuracy'])} of them right)." for name, t in teachers.items())
    built = card["built"]
    provenance = (f"Built with ferlab {built['ferlab_version']}, Keras {built['keras_version']}, Python "
                  f"{built['python']} on {built['machine']}, {built['date']}; latencies are from that machine.")
    limits = ("FER2013's faces are low-resolution, mostly frontal web images with noisy labels (FER+ relabelled "
              "about a third of them); accuracy on other corpora, cameras, ages and skin tones will differ and was "
              "not measured here. Expression is not emotion: a label says what a face shows, not what its owner "
              "feels.")
    lines = [
        f"# {card['name']}", "", card["summary"], "", intro, "",
        "## Results on the test faces", "", headline, "", *files, "",
        "Per class (default file):", "", *per_class, "",
        "Confusion matrix (rows: true class, columns: predicted):", "", *confusion, "",
        "## Calibration", "", calibration, "",
        "## Data", "", data_text, "", f"**Licence of the training data.** {data['licence']}", "",
        "## Model and recipe", "", recipe, "",
        "Spec:", "", "```toml", card["spec"].rstrip(), "```", "",
        "Reproduce (FER2013 as Kaggle image folders at `path/to/fer2013`):", "", "```bash", card["command"], "```", "",
        provenance, "", "## Limits", "", limits, "",
    ]
    return "\n".join(lines)
