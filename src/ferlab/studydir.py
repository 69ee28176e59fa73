"""The study directory: its files and folders, named once for every module that reads or writes a study.

A study directory (``ferlab study --out STUDY_DIR``) holds::

    study.json       which study this is (spec identity, data fingerprint); a rerun with another is refused
    results.csv      one row per finished trial (ferlab.rundir.RESULT_SCHEMA), rebuilt after every trial
    results.parquet  the same table
    status.json      the live state of the driver's trials (ferlab.study.status)
    .driver.lock     held by the one driver that runs the study (its holder: host, pid, session, start)
    .gitignore       what stays on the machine that trained (weights, data, caches, locks); the rest is the record
    trials/ID/       one run directory per trial (ferlab.rundir.RunDir)
    data/            the spec's [data], prepared here when the spec names no prepared data set
    cache/           frozen trials' backbone features
    report/          ``ferlab report``'s documents, figures and tables

The runner, its executors and status, the report and the command line name these through
:class:`StudyDir`, as every run-directory file goes through :class:`~ferlab.rundir.RunDir`: a folder
name, the trials' place and what a committed study leaves out are each stated here alone. The layout
is the one studies have always had, so a study begun by an earlier ferlab resumes unchanged.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ferlab.io import atomic_write_bytes, atomic_write_text
from ferlab.rundir import RunDir

TRIALS = "trials"
DRIVER_LOCK = ".driver.lock"


@dataclass(frozen=True)
class StudyDir:
    """One study directory; the properties name its files, the methods read and write the study-wide ones."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    study_file = property(lambda self: self.path / "study.json")
    results_csv = property(lambda self: self.path / "results.csv")
    results_parquet = property(lambda self: self.path / "results.parquet")
    status_file = property(lambda self: self.path / "status.json")
    driver_lock = property(lambda self: self.path / DRIVER_LOCK)
    gitignore_file = property(lambda self: self.path / ".gitignore")
    trials_dir = property(lambda self: self.path / TRIALS)
    data_dir = property(lambda self: self.path / "data")
    cache_dir = property(lambda self: self.path / "cache")
    report_dir = property(lambda self: self.path / "report")

    # ------------------------------------------------------------------------------------------ trials
    @staticmethod
    def trial_ref(trial_id: str) -> str:
        """A trial's directory relative to the study, as results.csv's ``run_dir`` records it (``trials/ID``)."""
        return f"{TRIALS}/{trial_id}"

    def trial(self, trial_id: str) -> RunDir:
        """The run directory of trial ``trial_id``."""
        return self.run(self.trial_ref(trial_id))

    def run(self, ref: str) -> RunDir:
        """The run directory a results row names (its ``run_dir``, relative to the study)."""
        return RunDir(self.path / ref)

    # ------------------------------------------------------------------------------------------ writing
    def write_results(self, table) -> None:
        """results.csv and results.parquet, each replaced atomically (a kill never leaves half a table)."""
        atomic_write_text(self.results_csv, table.to_csv(index=False))
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        atomic_write_bytes(self.results_parquet, buf.getvalue())

    def write_gitignore(self) -> None:
        """The study's ``.gitignore`` (once: a user's own edits are kept)."""
        if not self.gitignore_file.exists():
            atomic_write_text(self.gitignore_file, gitignore())

    # ------------------------------------------------------------------------------------------ reading
    def lock_holder(self) -> str:
        """Who holds the driver lock, for the refusal of a second driver (``pid 42 on node-3 since ...``)."""
        try:
            holder = json.loads(self.driver_lock.read_text())
            return f"pid {holder['pid']} on {holder['host']} since {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"


def gitignore() -> str:
    """What a study directory keeps to the machine that made it; everything else is its shareable record.
    Built from the owners' names, so a file renamed in a run or a study stays out where it is named."""
    root, trial = StudyDir("/"), RunDir(Path("/", TRIALS, "*"))
    kept = (root.data_dir, root.cache_dir, root.status_file, root.driver_lock, root.results_parquet,
            root.report_dir / "report.html",  # the report's figures inlined: large, and rebuilt from the record
            trial.model_file, trial.checkpoint_dir, trial.tensorboard_dir, trial.exports_dir, trial.worker_file,
            trial.lock_file)
    folders = {root.data_dir, root.cache_dir, trial.checkpoint_dir, trial.tensorboard_dir, trial.exports_dir}
    lines = [p.as_posix() + ("/" if p in folders else "") for p in kept]
    return ("# Written by ferlab: the files of this study that stay on the machine that trained it (weights,\n"
            "# checkpoints, the prepared data, caches, locks, live status). The rest is the study's record: "
            "commit it,\n# and `ferlab study` on another clone trains only the trials that have no record yet.\n"
            + "".join(f"{line}\n" for line in lines))
