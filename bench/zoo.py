"""Zoo models vs the `fer` package on FER2013's official test faces: accuracy, F1, calibration, speed, size.

    python -m bench zoo          # ~5 min once bench/.venv-fer exists (python -m bench peer-fer creates it)

Same run, same faces, same label mapping for every model:

- **fer7**: the 7,178 official test faces (test/ folder: PublicTest + PrivateTest) with FER2013's labels,
  and the **unseen** part of them: faces with no pixel-identical copy anywhere in FER2013's train/ folder
  (fer trained on all of train/; ferlab's zoo on its leak-free part), so neither model saw them.
- **paper5**: the same faces without disgust, fear + surprise -> anxious; a 7-class model's probabilities
  are merged the same way (disgust's share removed, the rest renormalised), a paper5 model's used as they are.
- **ferplus7**: the official test faces relabelled by FER+'s majority vote of ten annotators (faces whose
  vote is a tie, unknown, not a face or contempt are left out): a cleaner reference for the same faces.
- **ferplus8 private**: FER+'s own test set (FER2013's PrivateTest faces, majority label, contempt
  included; FER+'s tie and not-a-face rules), for the eight-class models; **ferplus7 private** is the same
  faces without contempt, for every model.

A model with more classes than fer7 (ferplus8: contempt) is scored on the seven-class sets with the extra
class's probability removed and the rest renormalised, as paper5 removes disgust.

Per model and test set: accuracy with its 95% bootstrap CI, macro F1, expected calibration error (15
bins); per model: the time to classify one face (ferlab: its default zoo file in its runtime,
:meth:`FaceClassifier.latency_ms`; fer: one ``FER._classify_emotions`` call on one face, fer's default
quantised .tflite, in bench/.venv-fer), in ``--rounds`` rounds that alternate all the models, with its
ratio to fer's time in the same round; and the model file's size. fer's crops are preprocessed as
``FER.detect_emotions`` does (bench/peer_fer_worker.py). Writes bench/results/zoo.csv.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import SHARED, write_table
from bench.peer_fer import FER_LABELS, WORK, FerWorker, ensure_fer_venv

FER2013 = SHARED / "data" / "fer2013"
FERPLUS_MAP = SHARED / "data" / "ferplus" / "fer2013_jpg_to_ferplus.csv"
DATA = WORK.parent / "zoo-data"


def log(text: str) -> None:
    print(f"[zoo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def official_test(labels: str, protocol: str = "fer7", test_part: str = "both",
                  ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Every official test face (no de-duplication; ``test_part`` both, public or private) with ``labels``
    (original or ferplus): faces, label ids (``protocol``'s order), classes, and a mask of the faces with no
    pixel-identical copy in train/."""
    from ferlab.data.prepare import PrepareConfig, PreparedData, is_prepared, prepare

    part = "all" if test_part == "both" else test_part
    out = DATA / f"{protocol}-official-{part}-{labels}"
    if not is_prepared(out):
        log(f"preparing {out}")
        prepare(PrepareConfig(source=str(FER2013), protocol=protocol, labels=labels,
                              ferplus=str(FERPLUS_MAP) if labels == "ferplus" else None,
                              split={"kind": "official", "allow_leaks": True, "test_part": test_part}), out)
    data = PreparedData(out)
    manifest = data.manifest
    train_hashes = set(manifest.loc[manifest["origin_split"] == "Training", "hash"])
    test = manifest[manifest["split"] == "test"]
    unseen = ~test["hash"].isin(train_hashes).to_numpy()
    x, y = data.arrays("test")
    return np.asarray(x), np.asarray(y), list(data.classes), unseen


def to_classes(probs: np.ndarray, model_classes: list[str], classes: list[str]) -> np.ndarray:
    """A model's probabilities over ``classes`` (a subset of its own, in that order), the other classes'
    share removed and the rest renormalised."""
    picked = probs[:, [model_classes.index(c) for c in classes]]
    return picked / np.maximum(picked.sum(1, keepdims=True), 1e-12)


def merge_to_paper5(probs: np.ndarray, classes: list[str]) -> tuple[np.ndarray, list[str]]:
    from ferlab.zoo.build import merge_groups, merge_probabilities

    paper5, groups = merge_groups(classes, "paper5")
    return merge_probabilities(probs, groups), paper5


def paper5_labels(y: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from ferlab.zoo.build import merge_groups, relabel

    _, groups = merge_groups(classes, "paper5")
    return relabel(y, groups)


def scores(probs: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    from ferlab.evaluate.calibration import expected_calibration_error
    from ferlab.evaluate.metrics import classification_metrics

    m = classification_metrics(y, probs, classes)
    return {"n": m["n"], "accuracy": round(m["accuracy"], 4), "ci95_low": round(m["accuracy_ci95"][0], 4),
            "ci95_high": round(m["accuracy_ci95"][1], 4), "macro_f1": round(m["macro_f1"], 4),
            "ece": round(expected_calibration_error(probs, y), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-runs", type=int, default=200, help="single-face calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds alternating fer and every zoo model")
    args = parser.parse_args(argv)
    from ferlab.deploy.export import predict_chunked
    from ferlab.deploy.formats import load_classifier
    from ferlab.zoo import built_models

    WORK.mkdir(parents=True, exist_ok=True)
    x, y, classes, unseen = official_test("original")
    x_plus, y_plus, classes_plus, _ = official_test("ferplus")
    assert classes == classes_plus
    x8, y8, classes8, unseen8 = official_test("ferplus", "ferplus8", "private")
    # the same private faces without contempt, labels in fer7 order (for every model)
    no_contempt = np.array([classes8[k] in classes for k in y8])
    y8_as_7 = np.array([classes.index(classes8[k]) for k in y8[no_contempt]])
    faces = {"fer7": x, "ferplus7": x_plus, "ferplus8private": x8}
    log(f"{len(y)} official test faces ({int(unseen.sum())} unseen by either model), {len(y_plus)} with a FER+ "
        f"label; FER+ test set (PrivateTest): {len(y8)} faces, {int(no_contempt.sum())} without contempt")

    # every model's 7- or 5-class probabilities on both face sets
    predictions: dict[str, dict] = {}
    python = ensure_fer_venv()
    worker = FerWorker(python)
    try:
        import tempfile

        fer = {"classes": FER_LABELS, "probs": {}}
        for name, faces_ in faces.items():
            with tempfile.NamedTemporaryFile(suffix=".npy", dir=WORK) as tmp:
                np.save(tmp.name, faces_.reshape(-1, 48, 48))
                fer["probs"][name] = np.asarray(worker.ask(cmd="crops", backend="tflite", npy=tmp.name)["probs"])
        fer["bytes"] = worker.ask(cmd="info")["model_files"]["emotion_model_quantized.tflite"]
        fer["file"] = "fer 25.10.3 emotion_model_quantized.tflite (mini-Xception, 64 px)"
        # fer's label order -> ferlab's fer7 order
        order = [FER_LABELS.index(c) for c in classes]
        fer["probs"] = {k: v[:, order] for k, v in fer["probs"].items()}
        fer["classes"] = classes
        predictions["fer"] = fer
        timers = {"fer": lambda: worker.ask(cmd="latency", backend="tflite", runs=args.latency_runs)["median_s"] * 1e3}
        # Probabilities in chunks of 256 faces: every classifier stays open for the timing rounds below, and
        # an interpreter keeps the memory of its largest batch (7,178 faces at once: two ensembles outgrew 24 GB)
        for entry in built_models():
            card = entry.card()
            clf = load_classifier(entry.model_file())
            log(f"{entry.name}: {entry.model_file().name}")
            predictions[entry.name] = {
                "classes": card["classes"], "probs": {k: predict_chunked(clf.predict, v.reshape(-1, 48, 48, 1), 256)
                                               for k, v in faces.items()},
                "bytes": entry.model_file().stat().st_size, "file": f"{entry.name}/{entry.model_file().name}"}
            timers[entry.name] = lambda clf=clf: clf.latency_ms(1, runs=args.latency_runs)
        # Single-face times under 1 ms move with this machine's load from one second to the next: rounds
        # alternate fer and every zoo model (each round starting one model later, so no model is always
        # first), and each model's time is the median over rounds of its median call, its ratio to fer the
        # median of the rounds' ratios (a same-round comparison).
        rounds = {name: [] for name in timers}
        names = list(timers)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                rounds[name].append(timers[name]())
            log(f"time round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {v[-1]:.3f} ms" for n, v in rounds.items()))
    finally:
        worker.close()
    for name, ms in rounds.items():
        ratios = [m / f for m, f in zip(ms, rounds["fer"])]
        predictions[name].update(ms_per_face=float(np.median(ms)), ms_range=(min(ms), max(ms)),
                                 ms_ratio_to_fer=float(np.median(ratios)), ms_ratio_range=(min(ratios), max(ratios)))

    rows = []
    keep5, y5 = paper5_labels(y, classes)
    keep5_plus, y5_plus = paper5_labels(y_plus, classes)
    for name, p in predictions.items():
        common = {"model": name, "file": p["file"], "ms_per_face": round(p["ms_per_face"], 3),
                  "ms_per_face_min": round(p["ms_range"][0], 3), "ms_per_face_max": round(p["ms_range"][1], 3),
                  "ms_ratio_to_fer": round(p["ms_ratio_to_fer"], 3),
                  "ms_ratio_to_fer_min": round(p["ms_ratio_range"][0], 3),
                  "ms_ratio_to_fer_max": round(p["ms_ratio_range"][1], 3), "rounds": args.rounds,
                  "file_bytes": p["bytes"]}
        sets = []
        if p["classes"] == classes8:
            sets += [("ferplus8 private", p["probs"]["ferplus8private"], y8, classes8),
                     ("ferplus8 private unseen", p["probs"]["ferplus8private"][unseen8], y8[unseen8], classes8)]
        if set(classes) <= set(p["classes"]):  # fer7, or fer7 and more (ferplus8): scored over fer7's classes
            as7 = {k: to_classes(v, p["classes"], classes) for k, v in p["probs"].items()}
            sets += [("fer7 official", as7["fer7"], y, classes),
                     ("fer7 official unseen", as7["fer7"][unseen], y[unseen], classes),
                     ("ferplus7 official", as7["ferplus7"], y_plus, classes),
                     ("ferplus7 private", as7["ferplus8private"][no_contempt], y8_as_7, classes)]
            p5, c5 = merge_to_paper5(as7["fer7"], classes)
            p5_plus, _ = merge_to_paper5(as7["ferplus7"], classes)
        else:
            p5, c5, p5_plus = p["probs"]["fer7"], p["classes"], p["probs"]["ferplus7"]
        sets += [("paper5 official", p5[keep5], y5, c5),
                 ("paper5 official unseen", p5[keep5 & unseen], paper5_labels(y[unseen], classes)[1], c5),
                 ("ferplus paper5 official", p5_plus[keep5_plus], y5_plus, c5)]
        for test_set, probs, labels, cls in sets:
            rows.append({**common, "test_set": test_set, **scores(probs, labels, cls)})
            log(f"{name:16s} {test_set:24s} acc {rows[-1]['accuracy']:.4f} ece {rows[-1]['ece']:.4f}")
    path = write_table("zoo", rows)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
