"""A study's live state: which trials are pending, running (at which epoch, where), done or failed.

The driver owns it and rewrites the study's ``status.json`` (:class:`~ferlab.studydir.StudyDir` names
it) atomically whenever it changes, so a script
(or a second terminal) can follow a study that runs on a cluster::

    {"study": "quickstart", "executor": "ray", "updated": "2026-12-03T12:00:00+00:00",
     "counts": {"pending": 1, "running": 2, "done": 2, "failed": 0, "interrupted": 0},
     "trials": [{"trial_id": "...", "state": "running", "epoch": 3, "epochs": 5,
                 "host": "node-2", "pid": 4242, "attempt": 1}, ...]}

A study stopped by Ctrl-C marks its running trials ``interrupted`` (they resume from their last epoch
when the same command runs again; until then nothing runs them).

Workers never write it: a running trial's epoch is its own ``history.csv`` (rewritten after every epoch)
and its host and attempt are its ``worker.json``, both read here from the shared study directory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from ferlab.io import atomic_write_json, read_json
from ferlab.rundir import RunDir
from ferlab.studydir import StudyDir

STATES = ("pending", "running", "done", "failed", "interrupted")


class StatusSnapshot(dict):
    """status.json's content: a plain dict (as written and as ``run_study(on_status=...)`` has always passed
    it), with named views so that readers do not restate its keys."""

    @property
    def counts(self) -> dict[str, int]:
        return self["counts"]

    @property
    def trials(self) -> list[dict]:
        return self["trials"]

    @property
    def executor(self) -> str:
        return self["executor"]

    def running(self) -> dict[str, dict]:
        """The running trials' records by trial id."""
        return {t["trial_id"]: t for t in self.trials if t["state"] == "running"}


class StudyStatus:
    """The driver's view of every selected trial; ``write()`` publishes it when something changed."""

    def __init__(self, out: Path, name: str, trials: list, executor: str, session: str,
                 on_change: Callable[[StatusSnapshot], None] | None = None):
        self.out, self.name, self.executor, self.session, self.on_change = out, name, executor, session, on_change
        self.study = StudyDir(out)
        self.trials: dict[str, dict] = {}
        for trial in trials:
            run = self.study.trial(trial.trial_id)
            finished = run.finished()
            state = "pending" if finished is None else ("done" if finished["status"] == "ok" else "failed")
            self.trials[trial.trial_id] = {"trial_id": trial.trial_id, "state": state,
                                           "epoch": _epochs_done(run), "epochs": trial.config.train.epochs}
        self._published: dict | None = None

    def pending(self, trial_id: str) -> None:
        """A trial sent to run again (--retry-failed): it waits, whatever it was."""
        self.trials[trial_id].update(state="pending", epoch=_epochs_done(self.study.trial(trial_id)))

    def started(self, trial_id: str, worker: dict | None = None) -> None:
        self.trials[trial_id].update(state="running", **(worker or {}))

    def epoch(self, trial_id: str, epoch: int) -> None:
        self.trials[trial_id]["epoch"] = epoch

    def finished(self, trial_id: str, metrics: dict) -> None:
        record = self.trials[trial_id]
        record["state"] = "done" if metrics.get("status") == "ok" else "failed"
        record["epoch"] = int(metrics.get("epochs_run") or record["epoch"])
        if record["state"] == "failed":
            record["reason"] = metrics.get("reason", "")

    def interrupted(self) -> None:
        """The driver was stopped (Ctrl-C): its running trials no longer run. One that finished just before is
        recorded as such; the others are ``interrupted`` at their last finished epoch, where a rerun resumes."""
        for trial_id, record in self.trials.items():
            if record["state"] != "running":
                continue
            run = self.study.trial(trial_id)
            finished = run.finished()
            if finished is not None:
                self.finished(trial_id, finished)
            else:
                record.update(state="interrupted", epoch=_epochs_done(run))

    def poll(self) -> None:
        """Read the workers' progress from the study directory (trials running elsewhere)."""
        for trial_id, record in self.trials.items():
            if record["state"] not in ("pending", "running"):
                continue
            run = self.study.trial(trial_id)
            worker = _worker(run)
            if worker is not None and worker.get("session") == self.session:
                record.update(state="running", host=worker.get("host"), pid=worker.get("pid"),
                              attempt=worker.get("attempt", 1))
            if record["state"] == "running":
                record["epoch"] = _epochs_done(run)

    def snapshot(self) -> StatusSnapshot:
        counts = {s: 0 for s in STATES}
        for record in self.trials.values():
            counts[record["state"]] += 1
        return StatusSnapshot(study=self.name, executor=self.executor, counts=counts,
                              trials=[dict(r) for r in self.trials.values()])

    def write(self) -> StatusSnapshot:
        """Publish the status (status.json and the change callback) if it changed since the last time."""
        snap = self.snapshot()
        if snap != self._published:
            self._published = snap
            atomic_write_json(self.study.status_file,
                              {**snap, "updated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
            if self.on_change:
                self.on_change(snap)
        return snap


def _epochs_done(run: RunDir) -> int:
    """Epochs in the run's history.csv (0 before the first epoch ends)."""
    try:
        with open(run.history_file, encoding="utf-8") as fh:
            return max(0, sum(1 for line in fh if line.strip()) - 1)
    except FileNotFoundError:
        return 0


def _worker(run: RunDir) -> dict | None:
    if not run.worker_file.is_file():
        return None
    try:
        worker = read_json(run.worker_file, "worker.json")
    except Exception:  # noqa: BLE001 - a status is best effort; the trial's own record is what counts
        return None
    return worker if isinstance(worker, dict) else None


def read_status(out: str | Path) -> dict:
    """The study's status.json as written by its driver."""
    path = StudyDir(out).status_file
    return read_json(path, path.name, fix="run `ferlab study` on that directory first")
