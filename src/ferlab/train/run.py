"""One training run: prepared data -> model -> train (resumable) -> evaluate -> a run directory.

A run directory holds::

    config.json      the resolved RunConfig
    history.csv      epoch, loss, accuracy, val_loss, val_accuracy, lr, seconds
    metrics.json     everything measured (written last: its presence with status "ok" marks a finished run)
    confusion.csv    test confusion matrix (rows: true class, columns: predicted)
    predictions.csv  test predictions with class probabilities
    model.keras      the selected model (raw 48x48 pixels in, probabilities out; no optimizer state)
    tb/              TensorBoard logs
    checkpoints/     per-epoch checkpoints while training (removed when the run finishes)
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab import __version__
from ferlab.data.prepare import PreparedData
from ferlab.errors import FerlabError
from ferlab.io import atomic_write_json, atomic_write_text, read_json
from ferlab.train.config import RunConfig
from ferlab.train.loop import HISTORY_COLUMNS, TrialFailed, fit_resumable

METRICS_VERSION = 1


def setup_runtime(cfg: RunConfig) -> None:
    """Seeds, determinism and precision for this process (Keras/TF global state)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")


def read_finished(run_dir: Path) -> dict | None:
    """metrics.json of a finished run (ok or failed), or None if the run has not finished."""
    path = run_dir / "metrics.json"
    if not path.exists():
        return None
    metrics = read_json(path, "metrics.json")
    if not isinstance(metrics, dict) or metrics.get("metrics_version") != METRICS_VERSION or "status" not in metrics:
        raise FerlabError(f"{path}: written by another ferlab version or corrupt; move the run directory away and rerun")
    return metrics


def record_failure(run_dir: Path, reason: str, fields: dict) -> dict:
    """Write (and return) the metrics.json of a run that could not finish: status "failed" and why."""
    metrics = {"metrics_version": METRICS_VERSION, "ferlab_version": __version__, **fields,
               "status": "failed", "reason": reason}
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def _check_config(run_dir: Path, cfg: RunConfig) -> None:
    path = run_dir / "config.json"
    resolved = cfg.model_dump(mode="json")
    if path.exists():
        if read_json(path, "config.json") != resolved:
            raise FerlabError(f"{path}: this run directory holds a run with another configuration; choose another output directory")
    else:
        atomic_write_json(path, resolved)


def train_run(cfg: RunConfig, run_dir: str | os.PathLike, *, data: PreparedData | None = None,
              feature_cache: str | os.PathLike | None = None, trial: dict | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train and evaluate one run into ``run_dir`` (resuming it if interrupted); return its metrics.

    A finished run is not retrained. ``trial`` adds identifying fields (trial id, grid values) to the
    metrics. Training failures (NaN loss, out of memory) are recorded in metrics.json with status
    "failed" and returned, not raised.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    finished = read_finished(run_dir)
    if finished is not None:
        return finished
    _check_config(run_dir, cfg)
    data = data or PreparedData(Path(cfg.data))
    setup_runtime(cfg)
    base = {"metrics_version": METRICS_VERSION, "ferlab_version": __version__, **(trial or {}),
            **_describe(cfg, data)}
    started = time.perf_counter()
    try:
        if cfg.model.mode == "frozen":
            from ferlab.train.frozen import train_frozen

            model, state, probs, zero_fraction = train_frozen(cfg, data, run_dir, feature_cache, on_epoch)
        else:
            model, state = _train_end_to_end(cfg, data, run_dir, on_epoch)
            probs = {split: _predict(model, data.arrays(split)[0]) for split in ("train", "val", "test")}
            zero_fraction = _zero_fraction(model, cfg, data)
    except TrialFailed as exc:
        return record_failure(run_dir, str(exc), base)
    metrics = _evaluate_and_write(cfg, data, run_dir, model, state, probs, base)
    metrics.update(train_seconds=round(time.perf_counter() - started, 1), zero_feature_fraction=zero_fraction)
    atomic_write_json(run_dir / "metrics.json", metrics)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return metrics


def _describe(cfg: RunConfig, data: PreparedData) -> dict:
    meta = data.meta
    split = meta["config"]["split"]
    return {
        "backbone": cfg.model.backbone, "pooling": cfg.model.pooling, "pooling_scope": cfg.model.pooling_scope,
        "mode": cfg.model.mode, "input_size": cfg.model.input_size, "seed": cfg.train.seed,
        "preprocessing": cfg.model.preprocessing, "weights": _weights_name(cfg.model.weights),
        "classes": list(data.classes),
        "data": {"path": str(data.path), "fingerprint": data.fingerprint, "source": meta["source"]["name"],
                 "protocol": meta["protocol"]["name"], "split": split["kind"], "split_seed": split["seed"],
                 "leak_free": not split["allow_leaks"], "counts": meta["totals"]},
    }


def _weights_name(weights: str) -> str:
    return weights if weights in ("imagenet", "none") else Path(weights).name


def _train_end_to_end(cfg: RunConfig, data: PreparedData, run_dir: Path, on_epoch):
    import keras

    from ferlab.models import build_model
    from ferlab.train.data import eval_dataset, train_dataset

    x_train, y_train = data.arrays("train")
    x_val, y_val = data.arrays("val")
    if len(x_val) == 0:
        raise FerlabError(f"{data.path}: no validation images; prepare the data with --val-fraction > 0 (model selection needs them)")
    n_classes = len(data.classes)
    one_hot = cfg.train.label_smoothing > 0

    def train_ds_for(first_epoch: int):
        return train_dataset(x_train, y_train, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                             first_epoch=first_epoch, epochs=cfg.train.epochs, num_classes=n_classes,
                             one_hot=one_hot, augment=cfg.train.augment)

    callbacks = [keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False)] if cfg.train.tensorboard else []
    return fit_resumable(lambda: build_model(cfg.model.model_copy(update={"num_classes": n_classes})), train_ds_for,
                         eval_dataset(x_val, y_val, num_classes=n_classes, one_hot=one_hot), cfg.train,
                         len(x_train), run_dir, callbacks, _history_writer(run_dir, on_epoch))


def _history_writer(run_dir: Path, on_epoch):
    """Rewrites history.csv from the checkpointed history after every epoch, then reports the epoch."""

    def write(row: dict, history: list[dict]) -> None:
        atomic_write_text(run_dir / "history.csv", pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(index=False))
        if on_epoch:
            on_epoch(row)

    return write


def _predict(model, x: np.ndarray) -> np.ndarray:
    from ferlab.train.data import eval_dataset

    return np.asarray(model.predict(eval_dataset(x), verbose=0), dtype=np.float64)


def _zero_fraction(model, cfg: RunConfig, data: PreparedData) -> float | None:
    from ferlab.models import zero_feature_fraction

    x_test, _ = data.arrays("test")
    return float(zero_feature_fraction(model, x_test[:256]))


def _evaluate_and_write(cfg: RunConfig, data: PreparedData, run_dir: Path, model, state: dict,
                        probs: dict[str, np.ndarray], base: dict) -> dict:
    import keras

    from ferlab.evaluate.latency import keras_latency_ms
    from ferlab.evaluate.metrics import classification_metrics
    from ferlab.models import model_facts

    classes = list(data.classes)
    history = state.get("history", [])
    atomic_write_text(run_dir / "history.csv", pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(index=False))
    results = {}
    for split in ("train", "val", "test"):
        _, y = data.arrays(split)
        results[split] = classification_metrics(y, probs[split], classes, seed=cfg.train.seed,
                                                n_bootstrap=1000 if split == "test" else 0)
    _, y_test = data.arrays("test")
    pred = probs["test"].argmax(axis=1)
    predictions = pd.DataFrame({"index": np.flatnonzero(data.manifest["split"].to_numpy() == "test"),
                                "label_id": y_test, "pred_id": pred,
                                **{f"p_{c}": probs["test"][:, i].round(6) for i, c in enumerate(classes)}})
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    confusion = pd.DataFrame(results["test"]["confusion"], index=pd.Index(classes, name="true"), columns=classes)
    atomic_write_text(run_dir / "confusion.csv", confusion.to_csv())
    # The saved model is an uncompiled view of the trained one: no optimizer state, smaller file.
    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    tmp = run_dir / ".model.tmp.keras"
    inference.save(tmp)
    os.replace(tmp, run_dir / "model.keras")
    facts = model_facts(inference, cfg.model)
    latency = keras_latency_ms(inference, runs=cfg.train.latency_runs) if cfg.train.latency_runs else None
    return {
        **base, "status": "ok", "reason": "",
        "train": {k: results["train"][k] for k in ("accuracy", "loss")},
        "val": {k: results["val"][k] for k in ("accuracy", "loss")},
        "test": results["test"],
        "best_epoch": state.get("best_epoch") if cfg.train.select_best else len(history),
        "epochs_run": len(history), "selected_on": "val_accuracy" if cfg.train.select_best else "last epoch",
        "model": facts, "latency_ms": latency,
    }
