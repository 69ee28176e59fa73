"""Pooling-study cost: the frozen four-pooling study through the feature cache vs four uncached trainings.

Both sides run the same :func:`ferlab.study.runner.run_study` grid (one backbone, poolings none/min/avg/max,
mode ``frozen``, seed 0, same epochs, batch size, optimizer and prepared data), each in its own fresh
Python process and a fresh study directory (so the cache starts empty), timed end to end (wall seconds of
``run_study``: training, evaluation on train/val/test, model files; ``latency_runs = 0`` on both sides):

- ``cached``: ferlab as it is: the backbone's final feature map is computed once per image
  (:mod:`ferlab.train.frozen`, float16 on disk) and each pooling head trains and evaluates from it.
- ``uncached``: the same study with ``run_study(..., use_feature_cache=False)``: ferlab's end-to-end path
  (:func:`ferlab.train.run.train_end_to_end`, then predictions on train/val/test): the frozen backbone (``trainable=False``, BatchNorm in inference mode) sits inside the full model and
  ``model.fit`` recomputes its features for every image in every epoch (and for validation after every
  epoch), as four separate frozen trainings without a cache would.

Backbone images are counted for both (cached: each trial's ``feature_cache.images_computed`` in its
metrics.json; uncached, computed:
trials x (epochs x (train + val) + train + val + test)). Data: the real FER2013 image folder, ``paper5``
protocol, ``paper`` split with ``--train-per-class`` / ``--test-per-class`` (val: 10% of train), seed 0,
leak-free. Weights: the offline ImageNet MobileNetV2 from ../shared/weights for mobilenetv2, random init
(``none``) for the other backbones (the cost does not depend on the values). Sides alternate (cached first
in odd repetitions); the ratio is the median of per-repetition ratios.

    python -m bench pooling-cache                                  # MobileNetV2, 96 px, 5 epochs (~10 min)
    python -m bench pooling-cache --backbones mobilenetv2,resnet50 --input-size 96 --epochs 5 --reps 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, SHARED, write_table

WORK = REPO / "bench" / "runs" / "pooling-cache"
MNV2_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_tvport_notop.weights.h5"


def prepared_data(train_per_class: int, test_per_class: int) -> Path:
    from ferlab.data.prepare import PrepareConfig, PreparedData, prepare
    from ferlab.data.splits import SplitConfig

    out = WORK / f"data-paper5-{train_per_class}-{test_per_class}-seed0"
    if (out / "data.json").exists():
        return PreparedData(out).path
    from ferlab.data.sources import load_image_folder

    source = SHARED / "data" / "fer2013"
    faces = load_image_folder(source)
    cfg = PrepareConfig(source=str(source), protocol="paper5",
                        split=SplitConfig(kind="paper", train_per_class=train_per_class,
                                          test_per_class=test_per_class, seed=0))
    return prepare(cfg, out, faces=faces).path


def run_side(job: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "bench.pooling_cache", "--worker", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "status": "ok"}
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": f"failed (rc {proc.returncode}): {tail[:200]}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pooling-cache", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv2")
    parser.add_argument("--poolings", default="none,min,avg,max")
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--reps", type=int, default=1, help="repetitions per side (alternating order)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per side process")
    args = parser.parse_args(argv)

    import ferlab.train  # noqa: F401  (quiet TensorFlow import)
    from ferlab.data.prepare import PreparedData

    started = time.perf_counter()
    data = PreparedData(prepared_data(args.train_per_class, args.test_per_class))
    counts = {s: len(data.arrays(s)[1]) for s in ("train", "val", "test")}
    print(f"data {data.path}: {counts}", flush=True)
    poolings = args.poolings.split(",")
    rows = []
    WORK.mkdir(parents=True, exist_ok=True)
    for k, backbone in enumerate(args.backbones.split(",")):
        weights = str(MNV2_WEIGHTS) if backbone == "mobilenetv2" and MNV2_WEIGHTS.is_file() else "none"
        results: dict[str, list[dict]] = {"cached": [], "uncached": []}
        for rep in range(args.reps):
            order = ("cached", "uncached") if (k + rep) % 2 == 0 else ("uncached", "cached")
            for side in order:
                with tempfile.TemporaryDirectory(prefix=f"{backbone}-{side}-", dir=WORK) as tmp:
                    job = {"cached": side == "cached", "backbone": backbone, "poolings": poolings,
                           "input_size": args.input_size, "epochs": args.epochs, "batch_size": args.batch_size,
                           "weights": weights, "data": str(data.path), "out": tmp}
                    res = run_side(job, args.timeout)
                    shutil.rmtree(tmp, ignore_errors=True)
                results[side].append(res)
                print(f"[{backbone} rep {rep + 1}] {side}: "
                      + (f"{res['wall_s']:.0f} s, test acc {res['test_accuracy']}" if res["status"] == "ok"
                         else res["status"]) + f" ({(time.perf_counter() - started) / 60:.1f} min so far)", flush=True)
        rows.append(summarise(backbone, weights, poolings, results, args, counts))
        print(f"  -> uncached/cached wall time {rows[-1]['speedup']}x", flush=True)
    path = write_table("pooling_cache", rows, key=("backbone", "input_size", "epochs", "batch_size", "poolings", "split"))
    print(f"wrote {path} ({(time.perf_counter() - started) / 60:.1f} min)")
    print(path.read_text())


def summarise(backbone: str, weights: str, poolings: list[str], results: dict[str, list[dict]], args,
              counts: dict[str, int]) -> dict:
    pairs = [(c, u) for c, u in zip(results["cached"], results["uncached"]) if c["status"] == u["status"] == "ok"]
    status = "ok" if pairs else "; ".join(f"{side}: {r['status']}" for side, rs in results.items() for r in rs
                                          if r["status"] != "ok")
    ok = {side: [r for r in rs if r["status"] == "ok"] for side, rs in results.items()}

    def med(side: str, key: str):
        values = [r[key] for r in ok[side]]
        return statistics.median(values) if values else None

    cached_s, uncached_s = med("cached", "wall_s"), med("uncached", "wall_s")
    row = {"backbone": backbone, "input_size": args.input_size, "weights": Path(weights).name, "mode": "frozen",
           "poolings": "/".join(poolings), "epochs": args.epochs, "batch_size": args.batch_size,
           "split": f"paper5 paper {args.train_per_class}/{args.test_per_class} per class seed 0",
           "train_images": counts["train"], "val_images": counts["val"], "test_images": counts["test"],
           "reps": len(pairs),
           "cached_s": _rounded(cached_s), "uncached_s": _rounded(uncached_s),
           "speedup": round(statistics.median(u["wall_s"] / c["wall_s"] for c, u in pairs), 2) if pairs else None,
           "cached_over_uncached": round(statistics.median(c["wall_s"] / u["wall_s"] for c, u in pairs), 3) if pairs else None,
           "cached_trials_train_s": _rounded(med("cached", "trials_train_s")),
           "uncached_trials_train_s": _rounded(med("uncached", "trials_train_s")),
           "cached_backbone_images": med("cached", "backbone_images"),
           "uncached_backbone_images": med("uncached", "backbone_images"),
           "cached_rss_peak_mb": med("cached", "rss_peak_mb"), "uncached_rss_peak_mb": med("uncached", "rss_peak_mb"),
           "load_avg_1min": round(statistics.median([r[k] for rs in ok.values() for r in rs
                                                     for k in ("load_before", "load_after")]), 1) if pairs else None,
           "status": status}
    for side in ("cached", "uncached"):
        if ok[side]:
            last = ok[side][-1]
            row.update({f"{side}_test_acc_{p}": last["test_accuracy"].get(p) for p in poolings})
            row[f"{side}_trial_status"] = ",".join(sorted(set(last["trial_status"])))
    return row


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- worker (one side in its own process) ---------------------------------------------------------------


def worker(job: dict) -> dict:
    import os
    import resource

    load = os.getloadavg()[0]
    import pandas as pd

    import ferlab.train  # noqa: F401  (quiet TensorFlow import)
    from ferlab.data.prepare import PreparedData
    from ferlab.rundir import RunDir
    from ferlab.study.runner import run_study
    from ferlab.study.spec import StudySpec

    spec = StudySpec(
        name=f"pooling-cache-{job['backbone']}", data=job["data"],
        grid={"backbones": [job["backbone"]], "poolings": job["poolings"], "seeds": [0],
              "input_sizes": [job["input_size"]], "modes": ["frozen"]},
        model={"weights": job["weights"]},
        train={"epochs": job["epochs"], "batch_size": job["batch_size"], "optimizer": "adam", "learning_rate": 1e-3,
               "latency_runs": 0, "tensorboard": False},
    )
    data = PreparedData(Path(job["data"]))
    counts = {s: len(data.arrays(s)[1]) for s in ("train", "val", "test")}
    t0 = time.perf_counter()
    table = run_study(spec, Path(job["out"]) / "study", use_feature_cache=job["cached"])
    wall = time.perf_counter() - t0
    epochs = [0 if pd.isna(e) else int(e) for e in table["epochs_run"]]
    if job["cached"]:
        images = sum((RunDir(Path(job["out"]) / "study" / r).finished().get("feature_cache") or {}).get("images_computed", 0)
                     for r in table["run_dir"])
    else:
        images = sum(e * (counts["train"] + counts["val"]) + sum(counts.values()) for e in epochs)
    return {"wall_s": wall, "backbone_images": int(images), "trials_train_s": float(table["train_seconds"].sum()),
            "test_accuracy": {r.pooling: None if pd.isna(r.test_accuracy) else round(float(r.test_accuracy), 4)
                              for r in table.itertuples()},
            "trial_status": list(table["status"]), "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "load_before": load, "load_after": os.getloadavg()[0]}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print("RESULT " + json.dumps(worker(json.loads(sys.argv[2]))), flush=True)
    else:
        main(sys.argv[1:])
