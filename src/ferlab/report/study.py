"""Read and validate a STUDY_DIR written by the study runner, before anything is written.

All the checks happen here so that a report is either built from consistent inputs or not at all: a
missing or corrupt file raises :class:`~ferlab.errors.FerlabError` with one line naming the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ferlab.data.prepare import MARKER as PREPARED_MARKER
from ferlab.data.prepare import is_prepared
from ferlab.errors import FerlabError
from ferlab.io import read_json
from ferlab.rundir import CONFIG_COLUMNS, HISTORY_METRICS, RESULT_SCHEMA, RunDir
from ferlab.studydir import StudyDir

# Configuration columns that may distinguish two models of one backbone (shown in the model label when they vary).
VARIANT_COLUMNS = ("pooling_scope", "mode", "input_size", "preprocessing", "weights")
REQUIRED_COLUMNS = ("trial_id", "backbone", "pooling", "mode", "input_size", "seed", "status", "train_accuracy",
                    "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss", "model_size_mb")
NUMERIC_COLUMNS = tuple(c for c, kind in RESULT_SCHEMA.items() if kind != "text")
RERUN = "rerun the study to rewrite it"


@dataclass(frozen=True)
class TrialFiles:
    """The per-trial files of one successful trial."""

    trial_id: str
    metrics: dict
    predictions: pd.DataFrame  # indexed by test image ``index``: label_id, pred_id
    history: pd.DataFrame | None  # None when history.csv is absent (curves then skip the trial)


@dataclass(frozen=True)
class Study:
    """A validated study: its metadata, one results row per trial, and the files of the successful trials."""

    root: Path
    meta: dict
    results: pd.DataFrame
    trials: dict[str, TrialFiles]
    y_true: np.ndarray  # test labels sorted by test image index, shared by every trial

    @cached_property
    def ok(self) -> pd.DataFrame:
        """Successful trials, with a ``model`` column: the backbone plus any configuration that varies."""
        ok = self.results[self.results["status"] == "ok"].copy()
        varying = [c for c in VARIANT_COLUMNS if ok[c].nunique(dropna=False) > 1]

        def label(row: pd.Series) -> str:
            extra = [f"{row[c]}px" if c == "input_size" else str(row[c]) for c in varying]
            return f"{row['backbone']} ({', '.join(extra)})" if extra else str(row["backbone"])

        ok["model"] = ok.apply(label, axis=1)
        return ok

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[self.results["status"] == "failed"]

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta.get("data", {}).get("classes") or self.trials[self.best_trial_id].metrics["classes"]]

    @cached_property
    def best_trial_id(self) -> str:
        """Highest validation accuracy (ties: lower validation loss, then trial id). Never test accuracy:
        choosing on the test set would make the best model's test numbers optimistic."""
        ranked = self.ok.sort_values(["val_accuracy", "val_loss", "trial_id"], ascending=[False, True, True])
        return str(ranked["trial_id"].iloc[0])

    def pred_matrix(self, trial_ids: list[str]) -> np.ndarray:
        """``(len(trial_ids), n_test)`` predicted class ids, rows in ``trial_ids`` order, columns aligned with ``y_true``."""
        return np.stack([self.trials[t].predictions["pred_id"].to_numpy() for t in trial_ids])


def load_study(study_dir: str | Path) -> Study:
    """Read study.json, results.csv and, for every successful trial, metrics.json, predictions.csv and
    (when present) history.csv; raise :class:`FerlabError` on the first missing or corrupt file."""
    study = StudyDir(study_dir)
    root = study.path
    if not root.is_dir():
        raise FerlabError(f"{root}: study directory not found; pass the STUDY_DIR the study runner wrote")
    if not study.study_file.exists():  # a directory of another kind: say which, and what to give instead
        _not_a_study(study)  # returns only for a study that lost its study.json: "rerun the study" below
    meta = _read_json(study.study_file, "study metadata", RERUN)
    results = _read_results(study.results_csv)
    trials: dict[str, TrialFiles] = {}
    reference: tuple[Path, pd.DataFrame] | None = None
    for row in results[results["status"] == "ok"].itertuples():
        run = study.run(row.run_dir) if row.run_dir else study.trial(row.trial_id)
        fix = f"rerun trial {row.trial_id} (delete {run.path} and rerun the study)"
        metrics = _read_json(run.metrics_file, "trial metrics", fix)
        _require_keys(run.metrics_file, metrics, fix)
        preds = _read_csv(run.predictions_file, ("index", "label_id", "pred_id"), fix).set_index("index").sort_index()
        if reference is None:
            reference = (run.predictions_file, preds)
        elif not (preds.index.equals(reference[1].index) and preds["label_id"].equals(reference[1]["label_id"])):
            raise FerlabError(f"{run.predictions_file}: test images or labels differ from {reference[0]}; "
                              "every trial of a study must be tested on the same data, " + fix)
        history = _read_csv(run.history_file, HISTORY_METRICS, fix) if run.history_file.is_file() else None
        trials[row.trial_id] = TrialFiles(row.trial_id, metrics, preds, history)
    if reference is None:
        raise FerlabError(f"{study.results_csv}: no trial has status ok; fix the failures listed there and rerun the "
                          f"study")
    return Study(root, meta, results, trials, reference[1]["label_id"].to_numpy(dtype=np.int64))


def _not_a_study(study: StudyDir) -> None:
    """``ferlab report`` on a prepared data set or a training run: name it as such, not as a broken study."""
    root, run = study.path, RunDir(study.path)
    if is_prepared(root):
        raise FerlabError(f"{root}: a prepared data set ({PREPARED_MARKER}), not a study; give the STUDY_DIR that "
                          f"`ferlab study --out` wrote, or run a study on this data first: ferlab study --data {root} "
                          f"--out STUDY_DIR")
    if run.config_file.is_file():
        raise FerlabError(f"{root}: a training run ({run.config_file.name}), not a study; its results are in "
                          f"{run.metrics_file.name} (`ferlab evaluate {root} --data DIR` scores it on other data); "
                          f"give ferlab report the STUDY_DIR that `ferlab study --out` wrote")
    if not study.results_csv.is_file():  # with results.csv: a study that lost study.json (the caller says so)
        raise FerlabError(f"{root}: not a study directory (no {study.study_file.name} or {study.results_csv.name}); "
                          f"give the STUDY_DIR that `ferlab study --out` wrote")


def _read_json(path: Path, what: str, fix: str) -> dict:
    data = read_json(path, what, fix)
    if not isinstance(data, dict):
        raise FerlabError(f"{path}: corrupt {what} (expected a JSON object); {fix}")
    return data


def _require_keys(path: Path, metrics: dict, fix: str) -> None:
    test = metrics.get("test")
    missing = [k for k in ("classes", "test") if k not in metrics]
    if isinstance(test, dict):
        missing += [f"test.{k}" for k in ("per_class", "confusion", "confusion_normalized") if k not in test]
    elif "test" not in missing:
        missing.append("test (not an object)")
    if missing:
        raise FerlabError(f"{path}: corrupt trial metrics (missing {', '.join(missing)}); {fix}")


def _read_csv(path: Path, required: tuple[str, ...], fix: str) -> pd.DataFrame:
    """A CSV with ``required`` columns; only empty cells are missing values (so a pooling named "none" or
    "NA" stays a string)."""
    if not path.is_file():
        raise FerlabError(f"{path}: not found; {fix}")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise FerlabError(f"{path}: corrupt CSV ({str(exc).splitlines()[0]}); {fix}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FerlabError(f"{path}: corrupt CSV (missing column(s) {', '.join(missing)}); {fix}")
    for col in set(required) & (set(NUMERIC_COLUMNS) | {"index", "label_id", "pred_id", *HISTORY_METRICS}):
        _to_numeric(frame, col, path, fix)
    return frame


def _to_numeric(frame: pd.DataFrame, col: str, path: Path, fix: str) -> None:
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() & frame[col].notna()
    if bad.any():
        raise FerlabError(f"{path}: corrupt CSV (column {col} holds non-numeric {frame[col][bad].iloc[0]!r}); {fix}")
    frame[col] = values


def _read_results(path: Path) -> pd.DataFrame:
    results = _read_csv(path, REQUIRED_COLUMNS, RERUN)
    for col in NUMERIC_COLUMNS:
        if col in results.columns:
            _to_numeric(results, col, path, RERUN)
        else:
            results[col] = np.nan
    results[["input_size", "seed"]] = results[["input_size", "seed"]].round().astype("Int64")
    for col in ("pooling_scope", "preprocessing", "weights", "reason", "run_dir"):
        if col not in results.columns:
            results[col] = ""
    text = [c for c in ("trial_id", *CONFIG_COLUMNS, "status", "reason", "run_dir") if c != "input_size"]
    for col in text:  # an all-empty column reads as float NaN; keep text columns as str with "" for missing
        results[col] = results[col].map(lambda v: "" if pd.isna(v) else str(v))
    if results.empty:
        raise FerlabError(f"{path}: results.csv has no trials; {RERUN}")
    bad_status = sorted(set(results["status"]) - {"ok", "failed"})
    if bad_status:
        raise FerlabError(f"{path}: corrupt results.csv (status {bad_status[0]!r}; expected ok or failed); {RERUN}")
    if results["trial_id"].duplicated().any():
        dup = results["trial_id"][results["trial_id"].duplicated()].iloc[0]
        raise FerlabError(f"{path}: corrupt results.csv (trial {dup} listed twice); {RERUN}")
    ok = results["status"] == "ok"
    incomplete = ok & results[["seed", "input_size", "test_accuracy", "val_accuracy"]].isna().any(axis=1)
    if incomplete.any():
        raise FerlabError(f"{path}: corrupt results.csv (trial {results['trial_id'][incomplete].iloc[0]} is ok but "
                          f"lacks its seed, input size or accuracies); {RERUN}")
    return results
