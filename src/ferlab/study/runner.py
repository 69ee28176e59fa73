"""Run a study: every trial in its own directory, resumable, failures recorded, one results table.

Rerunning a study skips finished trials and resumes an interrupted one from its last epoch checkpoint.
The results table is rebuilt from the trials' metrics.json files after every trial and written
atomically, so a kill at any moment never corrupts it or duplicates a row.
"""

from __future__ import annotations

import fnmatch
import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ferlab import __version__
from ferlab.data.prepare import PreparedData, prepare
from ferlab.errors import FerlabError
from ferlab.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from ferlab.rundir import RESULT_COLUMNS, RunDir, results_row
from ferlab.study.spec import StudySpec, Trial, expand_trials


def study_data(spec: StudySpec, out: Path, data_dir: str | os.PathLike | None) -> PreparedData:
    """The study's prepared data: ``--data``, the spec's prepared path, or prepared once into STUDY_DIR/data."""
    if data_dir is not None:
        return PreparedData(Path(data_dir))
    if isinstance(spec.data, str):
        return PreparedData(Path(spec.data))
    target = out / "data"
    if (target / "data.json").is_file():
        data = PreparedData(target)
        if data.meta["config"] != spec.data.model_dump(mode="json"):
            raise FerlabError(f"{target}: prepared with other settings than the spec's [data]; use another --out")
        return data
    return prepare(spec.data, target)


def _check_study_dir(out: Path, spec: StudySpec, data: PreparedData) -> None:
    path = out / "study.json"
    record = {"name": spec.name, "ferlab_version": __version__, "spec": spec.model_dump(mode="json"),
              "data": {"path": os.path.relpath(data.path, out) if data.path.is_relative_to(out) else str(data.path),
                       "fingerprint": data.fingerprint, "source": data.meta["source"]["name"],
                       "protocol": data.meta["protocol"]["name"], "classes": list(data.classes),
                       "split": data.meta["config"]["split"]["kind"], "split_seed": data.meta["config"]["split"]["seed"],
                       "leak_free": not data.meta["config"]["split"]["allow_leaks"], "counts": data.meta["totals"]}}
    if path.exists():
        old = read_json(path, "study.json")
        if not isinstance(old, dict) or old.get("spec") != record["spec"] or old.get("data", {}).get("fingerprint") != data.fingerprint:
            raise FerlabError(f"{out}: holds a different study (spec or data differ); choose another --out")
        return
    atomic_write_json(path, record)


def run_study(spec: StudySpec, out: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
              retry_failed: bool = False, only: str | list[str] | None = None, use_feature_cache: bool = True,
              on_trial: Callable[[Trial, int, int], None] | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run (or resume) every trial of ``spec`` into ``out``; return the results table.

    ``only``: shell-style patterns (a list, or one comma-separated string) over trial ids, e.g.
    ``"*-avg-*"``: run just the matching trials now (the cheap ones first, or a share per machine); the
    results table lists every finished trial of the grid. ``use_feature_cache=False`` trains frozen
    trials end to end (see :func:`ferlab.train.run.train_run`).
    """
    import keras

    from ferlab.train.run import train_run

    out = Path(out)
    data = study_data(spec, out, data_dir)  # before creating anything: bad data leaves no study behind
    out.mkdir(parents=True, exist_ok=True)
    _check_study_dir(out, spec, data)
    trials = expand_trials(spec, str(data.path))
    selected = select_trials(trials, only)
    for i, trial in enumerate(selected):
        run = RunDir(out / "trials" / trial.trial_id)
        finished = run.finished()
        if finished is not None and not (retry_failed and finished["status"] == "failed"):
            continue
        if finished is not None:
            run.clear_result()
        if on_trial:
            on_trial(trial, i, len(selected))
        keras.backend.clear_session()
        info = {"trial_id": trial.trial_id}
        try:
            train_run(trial.config, run.path, data=data, feature_cache=out / "cache",
                      use_feature_cache=use_feature_cache, trial=info, on_epoch=on_epoch)
        except Exception as exc:  # noqa: BLE001
            # A trial that cannot run (weights missing offline, a backbone too big for memory, a bug
            # in one backbone) is recorded and the study goes on; the traceback is kept beside it.
            atomic_write_text(run.error_file, traceback.format_exc())
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            run.record_failure(reason, {**info, "backbone": trial.backbone, "pooling": trial.pooling,
                                             "mode": trial.mode, "input_size": trial.input_size, "seed": trial.seed,
                                             "preprocessing": trial.preprocessing})
        write_results(out, trials)
    return write_results(out, trials)


def select_trials(trials: list[Trial], only: str | list[str] | None) -> list[Trial]:
    """The trials whose id matches any of the patterns (all of them when ``only`` is empty)."""
    if not only:
        return trials
    patterns = [p.strip() for p in (only.split(",") if isinstance(only, str) else only) if p.strip()]
    selected = [t for t in trials if any(fnmatch.fnmatchcase(t.trial_id, p) for p in patterns)]
    if not selected:
        raise FerlabError(f"--only: {','.join(patterns)} matches no trial; trial ids look like {trials[0].trial_id}")
    return selected


def write_results(out: Path, trials: list[Trial]) -> pd.DataFrame:
    """results.csv and results.parquet from every finished trial, in grid order."""
    rows = []
    for trial in trials:
        rel = f"trials/{trial.trial_id}"
        metrics = RunDir(out / rel).finished()
        if metrics is not None:
            rows.append(results_row(metrics, rel))
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    import io

    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(out / "results.parquet", buf.getvalue())
    return table
