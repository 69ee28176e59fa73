"""The run directory: its files, how they are read and validated, and the study's results schema.

A run directory (``ferlab train``, one trial of a study) holds::

    config.json      the resolved RunConfig (written first; a rerun with another config is refused)
    history.csv      HISTORY_COLUMNS, one row per epoch
    metrics.json     everything measured, written last: status "ok" marks a finished run, "failed" a
                     recorded failure (with ``reason``)
    confusion.csv    test confusion matrix (rows: true class, columns: predicted)
    predictions.csv  test predictions: index, label_id, pred_id, p_<class>...
    model.keras      the selected model (raw 48x48 pixels in, probabilities out; no optimizer state)
    tb/              TensorBoard logs
    checkpoints/     per-epoch checkpoints while training (removed when the run finishes)
    evaluations/     ``ferlab evaluate`` results on other data
    exports/         ``ferlab export`` files (default place)
    error.txt        the traceback of a trial that raised (studies)
    worker.json      the process that trains it now or last: host, pid, attempt (studies)
    .lock            held by that process while it trains (a retried attempt waits for the last one)

Every reader and writer (training, the study runner, cross-data evaluation, export, the runtimes, the
report) names these files through :class:`RunDir`, so a file name, the finished-run rule and the classes
check are each stated once here.
:data:`RESULT_COLUMNS` / :func:`results_row` define a study's ``results.csv`` (one row per trial).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ferlab import __version__
from ferlab.errors import FerlabError
from ferlab.io import atomic_write_json, atomic_write_text, read_json

METRICS_VERSION = 1
HISTORY_METRICS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")  # what a report needs
HISTORY_COLUMNS = (*HISTORY_METRICS, "lr", "seconds")
TRAIN_FIRST = "give a finished `ferlab train` run directory"


def check_classes(value: object, where: str | os.PathLike, fix: str) -> list[str]:
    """``value`` as a list of class names; anything else is one error line naming ``where`` and ``fix``."""
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
        raise FerlabError(f"{where}: 'classes' must be a non-empty list of names; {fix}")
    if len(set(value)) != len(value):
        raise FerlabError(f"{where}: 'classes' names a class twice; {fix}")
    return list(value)


@dataclass(frozen=True)
class RunDir:
    """One run directory; the properties name its files, the methods read and write them."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    config_file = property(lambda self: self.path / "config.json")
    history_file = property(lambda self: self.path / "history.csv")
    metrics_file = property(lambda self: self.path / "metrics.json")
    confusion_file = property(lambda self: self.path / "confusion.csv")
    predictions_file = property(lambda self: self.path / "predictions.csv")
    model_file = property(lambda self: self.path / "model.keras")
    error_file = property(lambda self: self.path / "error.txt")
    worker_file = property(lambda self: self.path / "worker.json")
    lock_file = property(lambda self: self.path / ".lock")
    tensorboard_dir = property(lambda self: self.path / "tb")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    evaluations_dir = property(lambda self: self.path / "evaluations")
    exports_dir = property(lambda self: self.path / "exports")

    # ------------------------------------------------------------------------------------------ writing
    def claim(self, resolved_config: dict, normalise=lambda recorded: recorded) -> None:
        """Create the directory for this config, or check that it already holds the same config
        (``normalise``: the recorded config in today's form, see :func:`ferlab.train.config.recorded_config`)."""
        if self.config_file.exists():
            if normalise(read_json(self.config_file, "config.json")) != resolved_config:
                raise FerlabError(f"{self.config_file}: this run directory holds a run with another configuration; "
                                  f"choose another output directory")
            return
        atomic_write_json(self.config_file, resolved_config)

    def write_history(self, history: list[dict]) -> None:
        import pandas as pd  # here: the command line and the runtimes read this module without pandas

        atomic_write_text(self.history_file, pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(index=False))

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.metrics_file, metrics)

    def record_failure(self, reason: str, fields: dict) -> dict:
        """Write (and return) the metrics.json of a run that could not finish: status "failed" and why."""
        metrics = {"metrics_version": METRICS_VERSION, "ferlab_version": __version__, **fields,
                   "status": "failed", "reason": reason}
        self.write_metrics(metrics)
        return metrics

    def clear_result(self) -> None:
        """Forget a recorded result (to run a failed trial again); the rest of the directory stays."""
        self.metrics_file.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ reading
    def finished(self) -> dict | None:
        """metrics.json of a finished run (ok or failed), or None if the run has not finished."""
        if not self.metrics_file.exists():
            return None
        metrics = read_json(self.metrics_file, "metrics.json")
        if not isinstance(metrics, dict) or metrics.get("metrics_version") != METRICS_VERSION or "status" not in metrics:
            raise FerlabError(f"{self.metrics_file}: written by another ferlab version or corrupt; "
                              f"move the run directory away and rerun")
        return metrics

    def require_model(self) -> Path:
        """The run's model.keras; a missing directory, a file, or an unfinished run is one error line."""
        if not self.path.exists():
            raise FerlabError(f"{self.path}: no such run directory; {TRAIN_FIRST}")
        if not self.path.is_dir():
            raise FerlabError(f"{self.path}: not a directory; give a run directory (holds model.keras), not a file")
        if not self.model_file.is_file():
            raise FerlabError(f"{self.path}: no model.keras; {TRAIN_FIRST} (train it first)")
        return self.model_file

    def ok_metrics(self) -> dict:
        """metrics.json of a run that finished with status ok (its model is usable)."""
        self.require_model()
        metrics = read_json(self.metrics_file, "metrics.json", fix=TRAIN_FIRST)
        if not isinstance(metrics, dict):
            raise FerlabError(f"{self.metrics_file}: corrupt metrics.json (expected a JSON object); train the run again")
        if metrics.get("status") != "ok":
            raise FerlabError(f"{self.path}: the run did not finish ({metrics.get('reason') or 'status not ok'}); "
                              f"train it again")
        return metrics

    def classes(self) -> list[str]:
        """The class names of a finished run, in the model's output order."""
        return check_classes(self.ok_metrics().get("classes"), self.metrics_file, "train the run again")

    def config(self) -> dict:
        config = read_json(self.config_file, "config.json", fix=TRAIN_FIRST)
        if not isinstance(config, dict):
            raise FerlabError(f"{self.config_file}: corrupt config.json (expected a JSON object); train the run again")
        return config

    @staticmethod
    def holding(model_file: Path) -> RunDir | None:
        """The run directory a model file sits in (its model.keras, or any copy or export put beside it), or None."""
        run = RunDir(model_file.parent)
        return run if run.metrics_file.is_file() else None


# ---------------------------------------------------------------------------------------- results.csv
# A study's results table: one row per finished trial (column -> what it holds). Text columns are
# "text", whole numbers "int", the rest "float"; the report reads the table back with this schema.
RESULT_SCHEMA: dict[str, str] = {
    "trial_id": "text", "backbone": "text", "pooling": "text", "pooling_scope": "text", "mode": "text",
    "input_size": "int", "seed": "int", "preprocessing": "text", "weights": "text", "status": "text",
    "reason": "text", "train_accuracy": "float", "train_loss": "float", "val_accuracy": "float",
    "val_loss": "float", "test_accuracy": "float", "test_loss": "float", "test_accuracy_ci_low": "float",
    "test_accuracy_ci_high": "float", "macro_precision": "float", "macro_recall": "float", "macro_f1": "float",
    "weighted_f1": "float", "model_size_mb": "float", "params": "float", "flops": "float", "latency_ms": "float",
    "zero_feature_fraction": "float", "best_epoch": "float", "epochs_run": "float", "train_seconds": "float",
    "run_dir": "text",
}
RESULT_COLUMNS = tuple(RESULT_SCHEMA)
# What a trial is: trials that differ only in ``seed`` are repeats of one configuration.
CONFIG_COLUMNS = ("backbone", "pooling", "pooling_scope", "mode", "input_size", "preprocessing", "weights")


def results_row(metrics: dict, run_dir: str) -> dict:
    """A trial's metrics.json as one results.csv row (RESULT_COLUMNS)."""
    test, model = metrics.get("test", {}), metrics.get("model") or {}
    ci = test.get("accuracy_ci95") or [None, None]
    row = {col: metrics.get(col) for col in (*CONFIG_COLUMNS, "trial_id", "seed", "latency_ms",
                                             "zero_feature_fraction", "best_epoch", "epochs_run", "train_seconds")}
    row.update({
        "status": metrics["status"], "reason": metrics.get("reason", ""),
        "train_accuracy": metrics.get("train", {}).get("accuracy"), "train_loss": metrics.get("train", {}).get("loss"),
        "val_accuracy": metrics.get("val", {}).get("accuracy"), "val_loss": metrics.get("val", {}).get("loss"),
        "test_accuracy": test.get("accuracy"), "test_loss": test.get("loss"),
        "test_accuracy_ci_low": ci[0], "test_accuracy_ci_high": ci[1],
        "macro_precision": test.get("macro_precision"), "macro_recall": test.get("macro_recall"),
        "macro_f1": test.get("macro_f1"), "weighted_f1": test.get("weighted_f1"),
        "model_size_mb": model.get("size_mb"), "params": model.get("params_total"), "flops": model.get("flops"),
        "run_dir": run_dir,
    })
    return {col: row.get(col) for col in RESULT_COLUMNS}
