"""One training run: prepared data -> model -> train (resumable) -> evaluate -> a run directory.

The run directory's files are :class:`ferlab.rundir.RunDir`'s; this module fills them.
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
from ferlab.io import atomic_write_text
from ferlab.rundir import METRICS_VERSION, RunDir
from ferlab.train.config import RunConfig, recorded_config
from ferlab.train.loop import TrialFailed, fit_resumable, one_hot_targets, training_targets


def setup_runtime(cfg: RunConfig) -> None:
    """Seeds, determinism and precision for this process (Keras/TF global state)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")


def train_run(cfg: RunConfig, run_dir: str | os.PathLike, *, data: PreparedData | None = None,
              feature_cache: str | os.PathLike | None = None, use_feature_cache: bool = True,
              trial: dict | None = None, on_epoch: Callable[[dict], None] | None = None,
              teacher_probs: np.ndarray | None = None) -> dict:
    """Train and evaluate one run into ``run_dir`` (resuming it if interrupted); return its metrics.

    A finished run is not retrained. ``trial`` adds identifying fields (trial id, grid values) to the
    metrics. Training failures (NaN loss, out of memory) are recorded in metrics.json with status
    "failed" and returned, not raised. Frozen runs train their head on cached backbone features
    (``feature_cache``: the cache directory, default ``~/.cache/ferlab/features``); with
    ``use_feature_cache=False`` they train the whole frozen model end to end instead (same function, one
    backbone pass per image per epoch: the baseline the cache is measured against). ``teacher_probs``: the
    teacher's probabilities on the training faces, for a ``train.distill`` recipe.
    Nothing is written before the data has loaded, so a wrong data path leaves no directory behind.
    """
    run = RunDir(run_dir)
    finished = run.finished()
    if finished is not None:
        return finished
    data = data or PreparedData(Path(cfg.data))
    _check_trainable(data)
    run.claim(cfg.model_dump(mode="json"), normalise=recorded_config)
    setup_runtime(cfg)
    base = {"metrics_version": METRICS_VERSION, "ferlab_version": __version__, **(trial or {}),
            **_describe(cfg, data)}
    started = time.perf_counter()
    on_history = _history_writer(run, on_epoch)
    try:
        if cfg.model.mode == "frozen" and use_feature_cache:
            from ferlab.train.frozen import train_frozen

            model, state, probs, zero_fraction, cache = train_frozen(cfg, data, run.path, feature_cache, on_history,
                                                                     teacher_probs)
            base["feature_cache"] = cache
        else:
            model, state = train_end_to_end(cfg, data, run, on_history, teacher_probs)
            probs = {split: predict_probabilities(model, data.arrays(split)[0]) for split in ("train", "val", "test")}
            zero_fraction = _zero_fraction(model, cfg, data)
    except TrialFailed as exc:
        return run.record_failure(str(exc), base)
    metrics = _evaluate_and_write(cfg, data, run, model, state, probs, base)
    metrics.update(train_seconds=round(time.perf_counter() - started, 1), zero_feature_fraction=zero_fraction)
    run.write_metrics(metrics)
    shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    return metrics


def _check_trainable(data: PreparedData) -> None:
    """A data set without training or validation images cannot train a model: say so before writing anything."""
    if data.meta["config"]["split"]["kind"] == "test":
        raise FerlabError(f"{data.path}: an evaluation-only data set (--split test: every image in test); train on "
                          f"one prepared with --split paper, official or stratified, and evaluate on this one with "
                          f"`ferlab evaluate RUN --data {data.path}`")
    if len(data.arrays("train")[1]) == 0:
        raise FerlabError(f"{data.path}: no training images; prepare the data again with a training split")
    if len(data.arrays("val")[1]) == 0:
        raise FerlabError(f"{data.path}: no validation images; prepare the data with --val-fraction > 0 "
                          f"(model selection needs them)")


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


def train_end_to_end(cfg: RunConfig, data: PreparedData, run: RunDir, on_history,
                     teacher_probs: np.ndarray | None = None):
    """Fit the whole model on the images (resumable); return (model, state)."""
    import keras

    from ferlab.models import build_model
    from ferlab.train.data import eval_dataset, train_dataset

    x_train, _ = data.arrays("train")
    y_train = training_targets(cfg.train, data, teacher_probs)
    x_val, y_val = data.arrays("val")
    n_classes = len(data.classes)
    one_hot = one_hot_targets(cfg.train)

    def train_ds_for(first_epoch: int):
        return train_dataset(x_train, y_train, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                             first_epoch=first_epoch, epochs=cfg.train.epochs, num_classes=n_classes,
                             one_hot=one_hot, augment=cfg.train.augment)

    callbacks = ([keras.callbacks.TensorBoard(log_dir=str(run.tensorboard_dir), write_graph=False)]
                 if cfg.train.tensorboard else [])
    return fit_resumable(lambda: build_model(cfg.model.model_copy(update={"num_classes": n_classes})), train_ds_for,
                         eval_dataset(x_val, y_val, num_classes=n_classes, one_hot=one_hot), cfg.train,
                         len(x_train), run.path, callbacks, on_history)


def _history_writer(run: RunDir, on_epoch):
    """Rewrites history.csv from the checkpointed history after every epoch, then reports the epoch."""

    def write(row: dict, history: list[dict]) -> None:
        run.write_history(history)
        if on_epoch:
            on_epoch(row)

    return write


def predict_probabilities(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities (float64) of a Keras model over uint8 faces, in batches."""
    from ferlab.train.data import eval_dataset

    return np.asarray(model.predict(eval_dataset(x), verbose=0), dtype=np.float64)


def _zero_fraction(model, cfg: RunConfig, data: PreparedData) -> float | None:
    from ferlab.models import zero_feature_fraction

    x_test, _ = data.arrays("test")
    return float(zero_feature_fraction(model, x_test[:256]))


def _evaluate_and_write(cfg: RunConfig, data: PreparedData, run: RunDir, model, state: dict,
                        probs: dict[str, np.ndarray], base: dict) -> dict:
    import keras

    from ferlab.evaluate.latency import keras_latency_ms
    from ferlab.evaluate.metrics import classification_metrics
    from ferlab.models import model_facts

    classes = list(data.classes)
    history = state.get("history", [])
    run.write_history(history)
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
    atomic_write_text(run.predictions_file, predictions.to_csv(index=False))
    confusion = pd.DataFrame(results["test"]["confusion"], index=pd.Index(classes, name="true"), columns=classes)
    atomic_write_text(run.confusion_file, confusion.to_csv())
    # The saved model is an uncompiled view of the trained one: no optimizer state, smaller file.
    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    tmp = run.path / ".model.tmp.keras"
    inference.save(tmp)
    os.replace(tmp, run.model_file)
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
