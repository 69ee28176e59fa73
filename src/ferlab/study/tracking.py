"""Optional experiment tracking: each finished trial as one run in the lab's tracking store.

``--track mlflow`` logs to ``./mlruns`` (MLflow's local file store), ``--track mlflow:URI`` to any
tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``, ``file:/shared/mlruns``). The experiment is
the study's name; a run holds the trial's resolved config as parameters, its per-epoch history and
final test metrics as metrics, and its files (metrics.json, config.json, history.csv, confusion.csv,
model.keras; error.txt for a failed trial) as artifacts.

The driver logs a trial from its directory once the trial has finished, never the workers, so a retried
or resumed trial is logged once: a run is found again by its ``ferlab.trial_dir`` tag, and a run left
half-logged by a killed driver is deleted and logged again. TensorBoard logs stay in each trial's tb/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from ferlab.errors import FerlabError, first_line
from ferlab.io import read_json
from ferlab.rundir import RunDir, results_row

TRACKERS = ("mlflow",)
FINAL_METRICS = ("train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
                 "test_accuracy_ci_low", "test_accuracy_ci_high", "macro_precision", "macro_recall", "macro_f1",
                 "weighted_f1", "model_size_mb", "params", "flops", "latency_ms", "train_seconds", "best_epoch")
# The selected epoch's validation numbers, apart from the per-epoch curves of the same Keras names.
RENAMED = {"val_accuracy": "selected_val_accuracy", "val_loss": "selected_val_loss"}
TAG_DIR, TAG_TRIAL = "ferlab.trial_dir", "ferlab.trial_id"


def make_tracker(track: str | None, experiment: str):
    """The tracker ``--track`` names (None: no tracking); a wrong value is one error line."""
    if not track:
        return None
    kind, _, uri = track.partition(":")
    if kind not in TRACKERS:
        raise FerlabError(f"--track {track}: unknown tracker; choose one of: "
                          f"{', '.join(f'{k}, {k}:URI' for k in TRACKERS)}")
    return MlflowTracker(uri or None, experiment)


class MlflowTracker:
    def __init__(self, uri: str | None, experiment: str):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise FerlabError("--track mlflow needs MLflow; install it with: pip install 'ferlab[mlflow]'") from None
        self.uri = uri or Path("mlruns").resolve().as_uri()
        if self.uri.startswith("file:") or "://" not in self.uri:
            # MLflow 3 keeps its file store (``mlruns/``) in maintenance mode and refuses it unless asked;
            # it is the store that needs no database or server, so ferlab asks for it when it is chosen.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        except Exception as exc:  # noqa: BLE001 - an unreachable server, a bad URI: one line, before any training
            raise FerlabError(f"--track mlflow:{self.uri}: cannot use this tracking store ({first_line(exc)})") from None

    def log_trial(self, run: RunDir, trial_id: str) -> str | None:
        """Log a finished trial once; return its MLflow run id (None if it has not finished)."""
        metrics = run.finished()
        if metrics is None:
            return None
        key = str(run.path.resolve())
        for old in self.client.search_runs([self.experiment_id], filter_string=f"tags.`{TAG_DIR}` = '{_quote(key)}'"):
            if old.info.status == "FINISHED" or old.info.status == "FAILED":
                return old.info.run_id
            self.client.delete_run(old.info.run_id)  # half-logged by a driver that was killed
        from mlflow.entities import Metric, Param

        mlrun = self.client.create_run(self.experiment_id, run_name=trial_id,
                                       tags={TAG_DIR: key, TAG_TRIAL: trial_id, "ferlab.status": metrics["status"]})
        run_id = mlrun.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in _flatten(_config(run)).items()]
        now = int(time.time() * 1000)
        values = [Metric(RENAMED.get(k, k), float(v), now, 0) for k, v in results_row(metrics, "").items()
                  if k in FINAL_METRICS and _is_number(v)]
        if run.history_file.is_file():
            history = pd.read_csv(run.history_file)
            for row in history.to_dict("records"):
                values += [Metric(k, float(v), now, int(row["epoch"])) for k, v in row.items()
                           if k != "epoch" and _is_number(v)]
        for i in range(0, len(params), 100):  # MLflow's batch limits: 100 params, 1000 metrics
            self.client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(values), 1000):
            self.client.log_batch(run_id, metrics=values[i:i + 1000])
        if metrics.get("reason"):
            self.client.set_tag(run_id, "ferlab.reason", str(metrics["reason"])[:5000])
        for path in _artifacts(run):
            if path.is_file():
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED" if metrics["status"] == "ok" else "FAILED")
        return run_id


def _artifacts(run: RunDir) -> tuple[Path, ...]:
    """The trial's files an MLflow run keeps as artifacts (the module docstring lists them)."""
    return (run.metrics_file, run.config_file, run.history_file, run.confusion_file, run.model_file, run.error_file)


def _config(run: RunDir) -> dict:
    if not run.config_file.is_file():
        return {}
    config = read_json(run.config_file, "config.json")
    return config if isinstance(config, dict) else {}


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _is_number(v) -> bool:
    try:
        return v is not None and not isinstance(v, bool) and pd.notna(v) and float(v) == float(v)
    except (TypeError, ValueError):
        return False


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")
