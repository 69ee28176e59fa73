"""Run a study: every trial in its own directory, resumable, failures recorded, one results table.

Rerunning a study skips finished trials and resumes an interrupted one from its last epoch checkpoint.
A study's record is small and machine-independent (study.json, results.csv, each trial's config, history,
metrics, confusion and predictions): the runner writes a ``.gitignore`` into the study directory that
leaves out the rest (weights, checkpoints, prepared data, caches, locks), so a study committed to a
repository resumes on a fresh clone, where only the trials without a record are trained. A finished trial
whose recorded configuration differs from the spec's is one error line, never silently reused or
retrained. A trial cut off with its machine costs that trial alone: its checkpoints stay behind.
The results table is rebuilt from the trials' metrics.json files after every trial and written
atomically, so a kill at any moment (of the driver or of a worker) never corrupts it or duplicates a
row. The trials run where the executor puts them (:mod:`ferlab.study.executors`); this driver alone
writes the study's tables, its status.json and its tracking.
"""

from __future__ import annotations

import fnmatch
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ferlab import __version__
from ferlab.data.prepare import PreparedData, prepare
from ferlab.errors import FerlabError
from ferlab.io import atomic_write_bytes, atomic_write_json, atomic_write_text, file_lock, read_json
from ferlab.rundir import RESULT_COLUMNS, RunDir, results_row
from ferlab.study.executors import EXECUTORS, TrialJob
from ferlab.study.spec import StudySpec, Trial, expand_trials
from ferlab.study.status import StudyStatus
from ferlab.study.tracking import make_tracker
from ferlab.train.config import recorded_config


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
    record = {"name": spec.name, "ferlab_version": __version__, "spec": spec.identity(),
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
              executor: str = "local", address: str | None = None, max_retries: int = 3,
              track: str | None = None, on_status: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run (or resume) every trial of ``spec`` into ``out``; return the results table.

    ``only``: shell-style patterns (a list, or one comma-separated string) over trial ids, e.g.
    ``"*-avg-*"``: run just the matching trials now (the cheap ones first, or a share per machine); the
    results table lists every finished trial of the grid. ``use_feature_cache=False`` trains frozen
    trials end to end (see :func:`ferlab.train.run.train_run`). ``executor``: ``local`` (this process)
    or ``ray`` (each trial a Ray task with ``spec.resources``, on the cluster at ``address``; see
    :mod:`ferlab.study.executors`). ``track``: ``mlflow`` or ``mlflow:URI`` (see
    :mod:`ferlab.study.tracking`). ``on_status`` gets :class:`~ferlab.study.status.StudyStatus`
    snapshots as trials start, advance and finish (also written to ``out/status.json``).

    One driver per study directory: a second one is refused (``out/.driver.lock``) while the first runs.
    """
    if executor not in EXECUTORS:
        raise FerlabError(f"--executor {executor}: unknown executor; choose one of {', '.join(EXECUTORS)}")
    runner = EXECUTORS[executor](address=address, resources=spec.resources, max_retries=max_retries)
    runner.preflight()  # Ray missing or a dead --address: one line before anything is written
    out = Path(out)
    data = study_data(spec, out, data_dir)  # before creating anything: bad data leaves no study behind
    out.mkdir(parents=True, exist_ok=True)
    session = uuid.uuid4().hex[:12]
    holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "session": session,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    with file_lock(out / DRIVER_LOCK, blocking=False, holder=holder) as locked:
        if not locked:
            raise FerlabError(f"{out}: another driver is running this study ({_holder(out)}); wait for it to "
                              f"finish, or stop it, or choose another --out")
        _check_study_dir(out, spec, data)
        write_gitignore(out)
        trials = expand_trials(spec, str(data.path))
        selected = select_trials(trials, only)
        tracker = make_tracker(track, spec.name)  # a bad --track fails here, before any training
        status = StudyStatus(out, spec.name, selected, executor, session, on_status)
        pending = []
        for trial in selected:
            run = RunDir(out / "trials" / trial.trial_id)
            finished = run.finished()
            if finished is not None:
                check_recorded_config(run, trial)
            if finished is not None and not (retry_failed and finished["status"] == "failed"):
                continue
            if finished is not None:
                run.clear_result()
                status.pending(trial.trial_id)
            pending.append(trial)
        status.write()

        def on_finished(trial: Trial, metrics: dict) -> None:
            write_results(out, trials)
            status.finished(trial.trial_id, metrics)
            status.write()
            if tracker is not None:
                tracker.log_trial(RunDir(out / "trials" / trial.trial_id), trial.trial_id)

        job = TrialJob(out=str(out.resolve()), data_path=str(data.path.resolve()),
                       use_feature_cache=use_feature_cache, session=session)
        try:
            runner.run(pending, job, status, on_finished)
        except KeyboardInterrupt:  # Ctrl-C: status.json must not go on saying the stopped trials run
            status.interrupted()
            status.write()
            raise
        if tracker is not None:  # trials finished by an earlier driver that was stopped before logging them
            for trial in selected:
                tracker.log_trial(RunDir(out / "trials" / trial.trial_id), trial.trial_id)
        status.write()
        return write_results(out, trials)


DRIVER_LOCK = ".driver.lock"
# What a study directory keeps to the machine that made it; everything else is its shareable record.
GITIGNORE = f"""\
# Written by ferlab: the files of this study that stay on the machine that trained it (weights,
# checkpoints, the prepared data, caches, locks, live status). The rest is the study's record: commit it,
# and `ferlab study` on another clone trains only the trials that have no record yet.
/data/
/cache/
/status.json
/{DRIVER_LOCK}
/results.parquet
/report/report.html
/trials/*/model.keras
/trials/*/checkpoints/
/trials/*/tb/
/trials/*/exports/
/trials/*/worker.json
/trials/*/.lock
"""


def write_gitignore(out: Path) -> None:
    """The study's ``.gitignore`` (once: a user's own edits are kept)."""
    path = out / ".gitignore"
    if not path.exists():
        atomic_write_text(path, GITIGNORE)


def check_recorded_config(run: RunDir, trial: Trial) -> None:
    """A finished trial is reused only if its config.json is the spec's config for it. The data path is left
    out: study.json already ties the study to its data by fingerprint, and the path is where a clone put it."""
    recorded = recorded_config(run.config())
    expected = trial.config.model_dump(mode="json")
    diff = _first_difference({k: v for k, v in recorded.items() if k != "data"},
                             {k: v for k, v in expected.items() if k != "data"})
    if diff is not None:
        raise FerlabError(f"{run.config_file}: this finished trial was trained with {diff}; move its directory "
                          f"out of the study to train it again with the spec's settings, or use another --out")


def _first_difference(recorded: object, expected: object, key: str = "") -> str | None:
    """``"train.epochs = 20 (the spec says 15)"`` for the first differing key, or None when equal."""
    if isinstance(recorded, dict) and isinstance(expected, dict):
        for k in sorted(set(recorded) | set(expected)):
            diff = _first_difference(recorded.get(k), expected.get(k), f"{key}.{k}" if key else k)
            if diff is not None:
                return diff
        return None
    return None if recorded == expected else f"{key} = {recorded!r} (the spec says {expected!r})"


def _holder(out: Path) -> str:
    try:
        h = json.loads((out / DRIVER_LOCK).read_text())
        return f"pid {h['pid']} on {h['host']} since {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


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
