"""Training throughput and peak memory: ferlab's trainer vs the study's hand-written Keras script, CPU.

The two sides, per configuration (backbone x input size):

- ``ferlab``: the trainer's own pieces with the study's recipe (``preset = "paper"``: Adam 1e-3, sparse
  categorical cross-entropy, batch 32, x/255 preprocessing; random-init weights): the uint8 48x48 faces stay
  in memory as they are, :func:`ferlab.train.data.train_dataset` batches them (seeded permutation, gather,
  cast), :func:`ferlab.models.build_model` resizes to the input size and repeats grey to RGB inside the graph,
  :func:`ferlab.train.loop.compile_model` compiles (XLA off on CPU), then ``model.fit(dataset,
  steps_per_epoch=...)``. Left out: ferlab's per-epoch checkpoint and validation (after the timed steps).
- ``study``: the plain script the study used: every face pre-resized to HxWx3 float32 in memory
  (``cv2.resize`` bilinear, grey -> RGB, /255, into one preallocated float32 array: the most frugal way to
  write it; ``np.array([...]) / 255`` would make float64), ``keras.applications.<Backbone>(include_top=False,
  weights=None)`` + GlobalAveragePooling2D + Dense softmax, Adam 1e-3 / sparse CE / batch 32 (XLA off on CPU,
  Keras's "auto"), ``model.fit(x, y, batch_size=32)``.

Both hold the same ``--images`` FER2013 training faces (the first files of each class folder, labels folded
onto 5 classes; the values do not change the cost). A Keras callback stamps the end of every step (reading
the loss back, so the step has finished); images/s = batch / median step time (the median shrugs off steps
where other jobs took the cores).

Two measurements per configuration:

1. Per side, a fresh Python process (``--reps`` times, alternating ferlab/study order): ``--warmup`` +
   ``--steps`` steps of one ``fit``; its peak RSS (``ru_maxrss``: TensorFlow, model and data) and images/s.
   Process-to-process noise on a shared machine is large (2x seen), so these images/s are only rough.
2. ``--interleaved`` (default on): both sides built in one process, then ``--rounds`` alternations
   (ferlab, study, study, ferlab, ...) of ``fit`` calls of ``--chunk`` steps, the first step of each call
   untimed; ``throughput_ratio_interleaved`` is the median over rounds of each round's ratio of median
   step times (steps seconds apart see the same load), the ratio to quote; the per-round ratios are in
   ``interleaved_ratio_per_round``.

Memory (``*_mb`` columns are MiB): ``rss_*_mb`` is the process's peak RSS; the data columns are computed for the paper's 7,500
training images: the study's N*H*W*3*4 bytes vs ferlab's N*48*48 bytes. The study's one-off pre-resize
time is reported beside (``study_prep_s``), not in images/s.

    python -m bench train-throughput                             # MobileNetV2 at 48/96/224 px, ~15 min
    python -m bench train-throughput --plan mobilenetv3small:48,96,224
    python -m bench train-throughput --plan all:48,96 --reps 2   # every study backbone (hours on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, SHARED, write_table

STUDY_BACKBONES = {"mobilenetv2": "MobileNetV2", "mobilenetv3small": "MobileNetV3Small",
                   "nasnetmobile": "NASNetMobile", "resnet50": "ResNet50", "resnet50v2": "ResNet50V2",
                   "resnet152v2": "ResNet152V2", "densenet169": "DenseNet169", "densenet201": "DenseNet201"}
DEFAULT_PLAN = "mobilenetv2:48,96,224"
PAPER_TRAIN_IMAGES = 7500
CLASSES = 5


# --- driver -----------------------------------------------------------------------------------------


def parse_plan(plan: str) -> list[tuple[str, int]]:
    """``"a,b:48,96;c:224"`` -> [(a, 48), (a, 96), (b, 48), (b, 96), (c, 224)]; ``all`` = the study's eight."""
    configs = []
    for part in filter(None, (p.strip() for p in plan.split(";"))):
        names, _, sizes = part.partition(":")
        backbones = list(STUDY_BACKBONES) if names == "all" else names.split(",")
        for b in backbones:
            if b not in STUDY_BACKBONES:
                raise SystemExit(f"--plan: unknown backbone {b!r}; choose from {', '.join(STUDY_BACKBONES)} or all")
            configs += [(b, int(s)) for s in sizes.split(",")]
    return configs


def fer2013_faces(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` uint8 48x48 faces and labels 0..4: FER2013 train files, round robin over class folders."""
    root = SHARED / "data" / "fer2013" / "train"
    if not root.is_dir():
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 48, 48), np.uint8), rng.integers(0, CLASSES, n), "random pixels"
    from PIL import Image

    folders = [sorted(p.iterdir()) for p in sorted(root.iterdir()) if p.is_dir()]
    files, labels, i = [], [], 0
    while len(files) < n:
        for c, folder in enumerate(folders):
            if i < len(folder) and len(files) < n:
                files.append(folder[i])
                labels.append(c % CLASSES)
        i += 1
    faces = np.stack([np.asarray(Image.open(f).convert("L").resize((48, 48)), np.uint8) for f in files])
    return faces, np.asarray(labels, np.int64), "FER2013 train faces"


def run_side(job: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "bench.train_throughput", "--worker", json.dumps(job)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "status": "ok", "process_s": round(wall, 1)}
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": f"failed (rc {proc.returncode}): {tail[:200]}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench train-throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default=DEFAULT_PLAN,
                        help="backbones:sizes groups separated by ';' (backbones comma-separated or all)")
    parser.add_argument("--images", type=int, default=1500, help="faces held in memory by each side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (the first traces the graph)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per side process")
    parser.add_argument("--reps", type=int, default=1, help="repetitions per side (alternating order)")
    parser.add_argument("--interleaved", action=argparse.BooleanOptionalAction, default=True,
                        help="also time both sides in one process, alternating short fits (the robust ratio)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved: alternations")
    parser.add_argument("--chunk", type=int, default=4, help="interleaved: steps per fit call (first untimed)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per process")
    args = parser.parse_args(argv)

    configs = parse_plan(args.plan)
    n = max(args.images, (args.warmup + args.steps) * args.batch_size)
    faces, labels, what = fer2013_faces(n)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ferlab-throughput-") as tmp:
        np.save(Path(tmp) / "faces.npy", faces)
        np.save(Path(tmp) / "labels.npy", labels)
        for k, (backbone, size) in enumerate(configs):
            results: dict[str, list[dict]] = {"ferlab": [], "study": []}
            for rep in range(args.reps):
                order = ("ferlab", "study") if (k + rep) % 2 == 0 else ("study", "ferlab")
                for side in order:
                    job = {"side": side, "backbone": backbone, "size": size, "batch": args.batch_size,
                           "warmup": args.warmup, "steps": args.steps, "data": tmp}
                    res = run_side(job, args.timeout)
                    results[side].append(res)
                    print(f"[{k + 1}/{len(configs)}] {backbone} {size} px rep {rep + 1} {side}: "
                          + (f"{res['images_per_s']:.1f} img/s, peak RSS {res['rss_peak_mb']:.0f} MB"
                             if res["status"] == "ok" else res["status"]), flush=True)
            if args.interleaved:
                job = {"side": "both", "backbone": backbone, "size": size, "batch": args.batch_size,
                       "warmup": args.warmup, "rounds": args.rounds, "chunk": args.chunk, "data": tmp}
                res = run_side(job, args.timeout)
                results["both"] = [res]
                print(f"[{k + 1}/{len(configs)}] {backbone} {size} px interleaved: "
                      + (f"ferlab {res['ferlab_images_per_s']:.1f}, study {res['study_images_per_s']:.1f} img/s"
                         if res["status"] == "ok" else res["status"]), flush=True)
            rows.append(summarise(backbone, size, results, args, n, what))
            print(f"  -> ferlab/study images/s {rows[-1]['throughput_ratio']} (separate processes), "
                  f"{rows[-1]['throughput_ratio_interleaved']} (interleaved), RSS ratio {rows[-1]['rss_ratio']} "
                  f"({(time.perf_counter() - started) / 60:.1f} min so far)", flush=True)
    path = write_table("train_throughput", rows, key=("backbone", "input_size", "batch_size", "images"))
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    cols = ["backbone", "input_size", "ferlab_images_per_s", "study_images_per_s", "throughput_ratio",
            "throughput_ratio_interleaved",
            "ferlab_rss_peak_mb", "study_rss_peak_mb", "rss_ratio", "study_prep_s", "status"]
    import pandas as pd

    print(pd.DataFrame(rows)[cols].to_string(index=False))


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summarise(backbone: str, size: int, results: dict[str, list[dict]], args, n: int, what: str) -> dict:
    interleaved = results.pop("both", [])
    both = next((r for r in interleaved if r["status"] == "ok"), {})
    ok = {side: [r for r in rs if r["status"] == "ok"] for side, rs in results.items()}
    pairs = [(f, s) for f, s in zip(results["ferlab"], results["study"]) if f["status"] == s["status"] == "ok"]
    status = "ok" if pairs else "; ".join(f"{side}: {r['status']}" for side, rs in results.items() for r in rs
                                          if r["status"] != "ok")

    def med(side: str, key: str) -> float | None:
        return _median([r[key] for r in ok[side]])

    study_bytes = PAPER_TRAIN_IMAGES * size * size * 3 * 4
    ferlab_bytes = PAPER_TRAIN_IMAGES * 48 * 48
    return {
        "backbone": backbone, "input_size": size, "batch_size": args.batch_size, "images": n,
        "warmup_steps": args.warmup, "timed_steps": args.steps, "reps": len(pairs), "faces": what,
        "ferlab_images_per_s": _round(med("ferlab", "images_per_s"), 1),
        "study_images_per_s": _round(med("study", "images_per_s"), 1),
        "throughput_ratio": _round(_median([f["images_per_s"] / s["images_per_s"] for f, s in pairs]), 2),
        "ferlab_images_per_s_interleaved": _round(both.get("ferlab_images_per_s"), 1),
        "study_images_per_s_interleaved": _round(both.get("study_images_per_s"), 1),
        "throughput_ratio_interleaved": _round(both.get("ratio"), 2),
        "interleaved_ratio_per_round": "/".join(f"{r:.2f}" for r in both.get("ratio_per_round", [])),
        "interleaved_timed_steps": both.get("timed_steps"),
        "interleaved_status": interleaved[0]["status"] if interleaved else "not run",
        "ferlab_images_per_s_window_mean": _round(med("ferlab", "images_per_s_window"), 1),
        "study_images_per_s_window_mean": _round(med("study", "images_per_s_window"), 1),
        "ferlab_rss_peak_mb": _round(med("ferlab", "rss_peak_mb"), 0),
        "study_rss_peak_mb": _round(med("study", "rss_peak_mb"), 0),
        "rss_ratio": _round(_median([f["rss_peak_mb"] / s["rss_peak_mb"] for f, s in pairs]), 2),
        "ferlab_rss_after_import_mb": _round(med("ferlab", "rss_after_import_mb"), 0),
        "study_rss_after_import_mb": _round(med("study", "rss_after_import_mb"), 0),
        "ferlab_first_steps_s": _round(med("ferlab", "warmup_s"), 1),
        "study_first_steps_s": _round(med("study", "warmup_s"), 1),
        "study_prep_s": _round(med("study", "prep_s"), 2),
        "load_avg_1min": _round(_median([r[k] for rs in ok.values() for r in rs for k in ("load_before", "load_after")]), 1),
        "ferlab_data_mb_measured": round(n * 48 * 48 / 2**20, 1),
        "study_data_mb_measured": round(n * size * size * 3 * 4 / 2**20, 1),
        "ferlab_data_mb_7500": round(ferlab_bytes / 2**20, 1),
        "study_data_mb_7500": round(study_bytes / 2**20, 1),
        "data_memory_ratio_7500": round(ferlab_bytes / study_bytes, 5),
        "status": status,
    }


# --- worker (one side, one configuration, in its own process) ------------------------------------------


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _setup(side: str, job: dict, faces: np.ndarray, labels: np.ndarray, total_steps: int):
    """One side's model and ``fit`` arguments; the seconds spent preparing its training arrays."""
    import keras

    backbone, size, batch = job["backbone"], job["size"], job["batch"]
    keras.utils.set_random_seed(0)
    if side == "ferlab":
        from ferlab.models import build_model
        from ferlab.train.config import resolve_run_config
        from ferlab.train.data import steps_per_epoch, train_dataset
        from ferlab.train.loop import compile_model

        t0 = time.perf_counter()
        cfg = resolve_run_config({"preset": "paper", "data": job["data"],
                                  "model": {"backbone": backbone, "input_size": size, "weights": "none",
                                            "pooling": "avg", "num_classes": CLASSES},
                                  "train": {"batch_size": batch, "epochs": 1}})
        x = faces[..., None]  # (N, 48, 48, 1) uint8, as PreparedData.arrays gives it
        prep_s = time.perf_counter() - t0
        model = build_model(cfg.model)
        compile_model(model, cfg.train, steps_per_epoch(len(x), batch))
        epochs = -(-total_steps // steps_per_epoch(len(x), batch))
        data = (train_dataset(x, labels, batch_size=batch, seed=0, first_epoch=0, epochs=epochs,
                              num_classes=CLASSES, augment=cfg.train.augment),)
        return model, data, {"shuffle": False}, prep_s
    import cv2

    # The study's script: pre-resize every face to size x size x 3 float32 in [0, 1].
    t0 = time.perf_counter()
    x = np.empty((len(faces), size, size, 3), np.float32)
    for i, face in enumerate(faces):
        x[i] = cv2.cvtColor(cv2.resize(face, (size, size)), cv2.COLOR_GRAY2RGB) / np.float32(255.0)
    prep_s = time.perf_counter() - t0
    base = getattr(keras.applications, STUDY_BACKBONES[backbone])(include_top=False, weights=None,
                                                                 input_shape=(size, size, 3))
    model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model, (x, labels), {"batch_size": batch}, prep_s


def _fit_stamped(model, data: tuple, fit_kwargs: dict, steps: int) -> list[float]:
    """``model.fit`` for ``steps`` steps; the time at the end of every step (its loss read back)."""
    import keras

    stamps: list[float] = [time.perf_counter()]

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            if logs and "loss" in logs:
                float(logs["loss"])  # the step has finished
            stamps.append(time.perf_counter())

    model.fit(*data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Stamp()], **fit_kwargs)
    return stamps


def _import_side(side: str) -> None:
    if side == "ferlab":
        import ferlab.train  # noqa: F401  (quiet TensorFlow import)
    else:  # the study's script imports only Keras and OpenCV
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import cv2  # noqa: F401
        import keras  # noqa: F401


def worker(job: dict) -> dict:
    """One side alone: warm-up + timed steps of one ``fit``; its peak RSS."""
    side, batch, warmup = job["side"], job["batch"], job["warmup"]
    _import_side(side)
    rss_import, load = _rss_mb(), os.getloadavg()[0]
    faces, labels = np.load(Path(job["data"]) / "faces.npy"), np.load(Path(job["data"]) / "labels.npy")
    model, data, fit_kwargs, prep_s = _setup(side, job, faces, labels, warmup + job["steps"])
    stamps = _fit_stamped(model, data, fit_kwargs, warmup + job["steps"])
    dts = np.diff(stamps[max(warmup, 1):])  # stamps[0] is the start of fit: the first step is never timed
    return {"images_per_s": batch / float(np.median(dts)), "images_per_s_window": batch * len(dts) / float(np.sum(dts)),
            "step_ms_median": 1000 * float(np.median(dts)), "timed_steps": len(dts),
            "warmup_s": stamps[max(warmup, 1)] - stamps[0], "prep_s": prep_s, "rss_after_import_mb": rss_import,
            "rss_peak_mb": _rss_mb(), "jit_compile": bool(model.jit_compile), "params": int(model.count_params()),
            "load_before": load, "load_after": os.getloadavg()[0]}


def interleaved_worker(job: dict) -> dict:
    """Both sides in one process, alternating short ``fit`` calls (A, B, B, A, ...), so both see the same load.

    Every call runs ``chunk`` steps; its first step (iterator start-up: the study's adapter converts the
    whole array again) is not timed. images/s = batch / median step time over all timed steps of a side.
    """
    _import_side("ferlab")
    _import_side("study")
    faces, labels = np.load(Path(job["data"]) / "faces.npy"), np.load(Path(job["data"]) / "labels.npy")
    sides = {side: _setup(side, job, faces, labels, job["chunk"] * (job["rounds"] + 1))[:3] for side in ("ferlab", "study")}
    for setup in sides.values():  # warm-up: trace the train step
        _fit_stamped(*setup, max(job["warmup"], 2))
    dts: dict[str, list[list[float]]] = {"ferlab": [], "study": []}
    for r in range(job["rounds"]):
        for side in ("ferlab", "study") if r % 2 == 0 else ("study", "ferlab"):
            dts[side].append(np.diff(_fit_stamped(*sides[side], job["chunk"])[1:]).tolist())
    rate = {side: job["batch"] / float(np.median(np.concatenate(d))) for side, d in dts.items()}
    # Each round's ratio pairs steps taken seconds apart; their median is the ratio reported.
    per_round = [float(np.median(s) / np.median(f)) for f, s in zip(dts["ferlab"], dts["study"])]
    return {"ferlab_images_per_s": rate["ferlab"], "study_images_per_s": rate["study"],
            "ratio": float(np.median(per_round)), "ratio_per_round": per_round,
            "timed_steps": sum(len(d) for d in dts["ferlab"])}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        job = json.loads(sys.argv[2])
        print("RESULT " + json.dumps(interleaved_worker(job) if job["side"] == "both" else worker(job)), flush=True)
    else:
        main(sys.argv[1:])
