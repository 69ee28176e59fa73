"""Compile and fit with per-epoch checkpoints, so a killed run resumes losing at most one epoch.

A checkpoint is a directory ``checkpoints/epoch-NNNN/`` (model with optimizer state, best weights so far,
history) written to a temporary name and renamed, then named in ``checkpoints/LATEST``; a kill at any
moment leaves either the previous or the new checkpoint, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import ferlab.backend  # noqa: F401, I001  (TensorFlow imported quietly, before it is used)
import keras
import numpy as np

from ferlab.errors import FerlabError
from ferlab.io import atomic_dir, atomic_write_text
from ferlab.models import load_model
from ferlab.rundir import RunDir
from ferlab.train.config import TrainConfig


class TrialFailed(Exception):
    """Training could not produce a model (NaN loss, out of memory); the reason is recorded."""


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate
    if cfg.schedule == "cosine" or cfg.warmup_epochs > 0:
        total = max(1, cfg.epochs * steps_per_epoch)
        warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else cfg.learning_rate,
            decay_steps=max(1, total - warmup) if cfg.schedule == "cosine" else 10**12,
            alpha=0.0, warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=cfg.weight_decay or None)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay or None)


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    # Label smoothing and label distributions need one-hot targets; otherwise the study's sparse categorical
    # cross-entropy.
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing) if one_hot_targets(cfg)
            else keras.losses.SparseCategoricalCrossentropy())
    jit = cfg.jit_compile if cfg.jit_compile != "auto" else _has_gpu()
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch), loss=loss, metrics=["accuracy"], jit_compile=jit)


def one_hot_targets(cfg: TrainConfig) -> bool:
    """Whether training targets are rows of class probabilities (one-hot or distributions), not class ids."""
    return cfg.label_smoothing > 0 or cfg.targets == "distribution" or cfg.distill is not None


def training_targets(cfg: TrainConfig, data, teacher_probs: np.ndarray | None = None) -> np.ndarray:
    """The training split's targets: class ids; with ``targets = "distribution"`` each face's annotators'
    label distribution (:meth:`ferlab.data.prepare.PreparedData.label_distribution`); with ``distill``, those
    mixed with the teacher's softened probabilities (``teacher_probs``: (N train, classes), in
    ``data.arrays("train")`` order; see :class:`~ferlab.train.config.DistillConfig`)."""
    labels = data.arrays("train")[1]
    targets = data.label_distribution("train") if cfg.targets == "distribution" else labels
    if cfg.distill is None:
        return targets
    if teacher_probs is None:
        raise FerlabError(f"train.distill: teacher {cfg.distill.teacher!r} needs its probabilities on the training "
                          f"faces; distil through `ferlab models build` (it computes and caches them)")
    n_classes = len(data.classes)
    if teacher_probs.shape != (len(labels), n_classes):
        raise FerlabError(f"train.distill: the teacher's probabilities have shape {teacher_probs.shape}, not "
                          f"({len(labels)}, {n_classes}) (one row per training face, one column per class)")
    hard = np.eye(n_classes, dtype=np.float32)[targets] if targets.ndim == 1 else targets
    return (cfg.distill.weight * soften(teacher_probs, cfg.distill.temperature)
            + (1 - cfg.distill.weight) * hard).astype(np.float32)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row by row: T > 1 flattens a distribution, T < 1 sharpens it."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))


class _Checkpointer(keras.callbacks.Callback):
    def __init__(self, ckpt_root: Path, state: dict, on_epoch: Callable[[dict, list[dict]], None] | None):
        super().__init__()
        self.root, self.state, self.on_epoch = ckpt_root, state, on_epoch
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1, **{k: float(logs.get(k, np.nan)) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
               "lr": _current_lr(self.model.optimizer), "seconds": round(time.perf_counter() - self.started, 3)}
        if not np.isfinite(row["loss"]):
            self.model.stop_training = True
            self.state["failed"] = f"loss became {row['loss']} at epoch {epoch + 1}"
            return
        self.state["history"].append(row)
        previous = self.root / self.state["latest"] if self.state.get("latest") else None
        improved = row["val_accuracy"] > self.state.get("best_val_accuracy", -1.0)
        name = f"epoch-{epoch + 1:04d}"
        with atomic_dir(self.root / name, overwrite=True) as tmp:
            self.model.save(tmp / "model.keras")
            if improved or previous is None:
                self.model.save_weights(tmp / "best.weights.h5")
            else:
                os.link(previous / "best.weights.h5", tmp / "best.weights.h5")
            if improved:
                self.state.update(best_val_accuracy=row["val_accuracy"], best_epoch=epoch + 1)
            self.state["epoch"] = epoch + 1
            seeds = _seed_states(self.model)
            if seeds:
                np.save(tmp / "seeds.npy", np.stack([v.numpy() for v in seeds]))
            (tmp / "state.json").write_text(json.dumps({k: v for k, v in self.state.items() if k != "latest"}, indent=1))
        atomic_write_text(self.root / "LATEST", name)
        self.state["latest"] = name
        if previous is not None and previous.name != name:
            shutil.rmtree(previous, ignore_errors=True)
        if self.on_epoch:
            self.on_epoch(row, self.state["history"])


def _seed_states(model: keras.Model) -> list:
    """The random-number state of the model's dropout and augmentation layers (Keras SeedGenerators).

    model.save() leaves it out (Keras 3.15 saves weights, not seed generators), so a resumed run would
    draw its first epochs' dropout masks again and drift from the uninterrupted one; the checkpoint
    keeps it beside the model (measured: the quickstart's none-pooling trial, killed in epoch 2, resumed
    to train accuracy 0.9905 without it vs 0.9915 uninterrupted).
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def load_checkpoint(ckpt_root: Path) -> tuple[keras.Model | None, dict]:
    """The newest complete checkpoint (model with optimizer state) and its state, or (None, fresh state)."""
    latest = ckpt_root / "LATEST"
    if latest.is_file():
        name = latest.read_text().strip()
        state = json.loads((ckpt_root / name / "state.json").read_text())
        state["latest"] = name
        model = load_model(ckpt_root / name / "model.keras", "training checkpoint",
                           f"delete {ckpt_root} to train the run from its first epoch")
        if (ckpt_root / name / "seeds.npy").is_file():
            for var, value in zip(_seed_states(model), np.load(ckpt_root / name / "seeds.npy")):
                var.assign(value)
        return model, state
    return None, {"epoch": 0, "history": []}


def fit_resumable(build: Callable[[], keras.Model], train_ds_for: Callable[[int], object], val_data, cfg: TrainConfig,
                  n_train: int, run_dir: Path, callbacks: list | None = None,
                  on_epoch: Callable[[dict, list[dict]], None] | None = None) -> tuple[keras.Model, dict]:
    """Fit ``build()`` (or the resumed checkpoint) for ``cfg.epochs``; return the model and the run state.

    ``train_ds_for(first_epoch)`` must give the batches of epochs first_epoch..epochs-1. With
    ``cfg.select_best`` the returned model holds the weights of the best validation epoch.
    ``on_epoch(row, history)`` is called after each epoch's checkpoint is complete, with the whole
    history so far (the checkpoint's, so it survives resumes).
    """
    from ferlab.train.data import steps_per_epoch

    ckpt_root = RunDir(run_dir).checkpoint_dir
    ckpt_root.mkdir(parents=True, exist_ok=True)
    steps = steps_per_epoch(n_train, cfg.batch_size)
    model, state = load_checkpoint(ckpt_root)
    if model is None:
        model = build()
        compile_model(model, cfg, steps)
    cbs = [_Checkpointer(ckpt_root, state, on_epoch)]
    if cfg.early_stopping_patience:
        cbs.append(_EarlyStopping(cfg.early_stopping_patience, state))
    cbs += callbacks or []
    if state["epoch"] < cfg.epochs and not _early_stopped(state, cfg):
        try:
            model.fit(train_ds_for(state["epoch"]), validation_data=val_data, epochs=cfg.epochs,
                      initial_epoch=state["epoch"], steps_per_epoch=steps, callbacks=cbs, verbose=0,
                      shuffle=False)  # the dataset is already shuffled, per epoch, by seed
        except MemoryError:
            raise TrialFailed("out of memory (MemoryError)") from None
        except Exception as exc:  # TF reports OOM as ResourceExhaustedError
            if type(exc).__name__ == "ResourceExhaustedError":
                raise TrialFailed(f"out of memory: {str(exc).splitlines()[0][:200]}") from None
            raise
    if state.get("failed"):
        raise TrialFailed(state["failed"])
    if cfg.select_best and state.get("best_epoch"):
        model.load_weights(ckpt_root / state["latest"] / "best.weights.h5")
    return model, state


def _early_stopped(state: dict, cfg: TrainConfig) -> bool:
    patience = cfg.early_stopping_patience
    return bool(patience) and state["epoch"] - state.get("best_epoch", 0) >= patience


class _EarlyStopping(keras.callbacks.Callback):
    """Stop after ``patience`` epochs without a better validation accuracy (state survives resumes)."""

    def __init__(self, patience: int, state: dict):
        super().__init__()
        self.patience, self.state = patience, state

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 - self.state.get("best_epoch", 0) >= self.patience:
            self.model.stop_training = True
