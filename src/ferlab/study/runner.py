"""Run a study: every trial in its own directory, resumable, failures recorded, one results table.

Rerunning a study skips finished trials and resumes an interrupted one from its last epoch checkpoint.
A study's record is small and machine-independent (study.json, results.csv, each trial's config, history,
metrics, confusion and predictions): the runner writes a ``.gitignore`` into the study directory that
leaves out the rest (weights, checkpoints, prepared data, caches, locks; see :mod:`ferlab.studydir`, the
owner of the study directory's layout), so a study committed to a
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
from ferlab.config import first_difference
from ferlab.data.prepare import PrepareConfig, PreparedData, prepare_or_reuse
from ferlab.errors import FerlabError
from ferlab.io import atomic_write_json, file_lock, read_json
from ferlab.rundir import RESULT_COLUMNS, RunDir, results_row
from ferlab.study.executors import Executor, TrialJob, executor_class
from ferlab.study.spec import StudySpec, Trial, expand_trials
from ferlab.study.status import StatusSnapshot, StudyStatus
from ferlab.study.tracking import make_tracker
from ferlab.studydir import StudyDir
from ferlab.train.config import recorded_config


def study_data(spec: StudySpec, out: Path, data_dir: str | os.PathLike | None) -> PreparedData:
    """The study's prepared data: ``--data``, the spec's prepared path, or prepared once into the study's
    data folder (reused by every rerun while it matches the spec's [data])."""
    if data_dir is not None:
        return PreparedData(Path(data_dir))
    if isinstance(spec.data, str):
        return PreparedData(Path(spec.data))
    stated = PrepareConfig(**spec.data.model_dump())  # every setting, defaults included: the data is the spec's
    return prepare_or_reuse(stated, StudyDir(out).data_dir, says="the spec's [data] says", fix="use another --out")


def _check_study_dir(study: StudyDir, spec: StudySpec, data: PreparedData) -> None:
    out, path = study.path, study.study_file
    record = {"name": spec.name, "ferlab_version": __version__, "spec": spec.identity(),
              "data": {"path": os.path.relpath(data.path, out) if data.path.is_relative_to(out) else str(data.path),
                       "fingerprint": data.fingerprint, "source": data.meta["source"]["name"],
                       "protocol": data.meta["protocol"]["name"], "classes": list(data.classes),
                       "split": data.meta["config"]["split"]["kind"], "split_seed": data.meta["config"]["split"]["seed"],
                       "leak_free": not data.meta["config"]["split"]["allow_leaks"], "counts": data.meta["totals"]}}
    if path.exists():
        old = read_json(path, path.name)
        if not isinstance(old, dict) or old.get("spec") != record["spec"] or old.get("data", {}).get("fingerprint") != data.fingerprint:
            raise FerlabError(f"{out}: holds a different study (spec or data differ); choose another --out")
        return
    atomic_write_json(path, record)


def run_study(spec: StudySpec, out: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
              retry_failed: bool = False, only: str | list[str] | None = None, use_feature_cache: bool = True,
              executor: Executor | str = "local", track: str | None = None,
              on_status: Callable[[StatusSnapshot], None] | None = None) -> pd.DataFrame:
    """Run (or resume) every trial of ``spec`` into ``out``; return the results table.

    ``only``: shell-style patterns (a list, or one comma-separated string) over trial ids, e.g.
    ``"*-avg-*"``: run just the matching trials now (the cheap ones first, or a share per machine); the
    results table lists every finished trial of the grid. ``use_feature_cache=False`` trains frozen
    trials end to end (see :func:`ferlab.train.run.train_run`). ``executor``: where the trials run, an
    :class:`~ferlab.study.executors.Executor` holding its own options (``RayExecutor.from_options(address=
    "auto")``) or a registered name with its defaults: ``local`` (this process) or ``ray`` (each trial a Ray
    task asking for ``spec.resources``; see :mod:`ferlab.study.executors`). ``track``: ``mlflow`` or
    ``mlflow:URI`` (see :mod:`ferlab.study.tracking`). ``on_status`` gets :class:`~ferlab.study.status.StatusSnapshot`
    dicts as trials start, advance and finish (also written to ``out/status.json``).

    One driver per study directory: a second one is refused (its driver lock) while the first runs.
    """
    runner = executor_class(executor)() if isinstance(executor, str) else executor
    runner.preflight()  # Ray missing or a dead --address: one line before anything is written
    out = Path(out)
    study = StudyDir(out)
    data = study_data(spec, out, data_dir)  # before creating anything: bad data leaves no study behind
    out.mkdir(parents=True, exist_ok=True)
    session = uuid.uuid4().hex[:12]
    holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "session": session,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    with file_lock(study.driver_lock, blocking=False, holder=holder) as locked:
        if not locked:
            raise FerlabError(f"{out}: another driver is running this study ({study.lock_holder()}); wait for it "
                              f"to finish, or stop it, or choose another --out")
        _check_study_dir(study, spec, data)
        study.write_gitignore()
        trials = expand_trials(spec, str(data.path))
        selected = select_trials(trials, only)
        tracker = make_tracker(track, spec.name)  # a bad --track fails here, before any training
        status = StudyStatus(out, spec.name, selected, runner.name, session, on_status)
        pending = []
        for trial in selected:
            run = study.trial(trial.trial_id)
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
                tracker.log_trial(study.trial(trial.trial_id), trial.trial_id)

        job = TrialJob(out=str(out.resolve()), data_path=str(data.path.resolve()),
                       use_feature_cache=use_feature_cache, session=session, resources=spec.resources)
        try:
            runner.run(pending, job, status, on_finished)
        except KeyboardInterrupt:  # Ctrl-C: status.json must not go on saying the stopped trials run
            status.interrupted()
            status.write()
            raise
        if tracker is not None:  # trials finished by an earlier driver that was stopped before logging them
            for trial in selected:
                tracker.log_trial(study.trial(trial.trial_id), trial.trial_id)
        status.write()
        return write_results(out, trials)


def check_recorded_config(run: RunDir, trial: Trial) -> None:
    """A finished trial is reused only if its config.json is the spec's config for it. The data path is left
    out: study.json already ties the study to its data by fingerprint, and the path is where a clone put it."""
    recorded = recorded_config(run.config())
    expected = trial.config.model_dump(mode="json")
    diff = first_difference({k: v for k, v in recorded.items() if k != "data"},
                            {k: v for k, v in expected.items() if k != "data"})
    if diff is not None:
        raise FerlabError(f"{run.config_file}: this finished trial was trained with {diff}; move its directory "
                          f"out of the study to train it again with the spec's settings, or use another --out")


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
    study = StudyDir(out)
    rows = []
    for trial in trials:
        metrics = study.trial(trial.trial_id).finished()
        if metrics is not None:
            rows.append(results_row(metrics, study.trial_ref(trial.trial_id)))
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    study.write_results(table)
    return table
