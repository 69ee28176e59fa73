"""The owners of the study directory, the prepared data set and the executors: the layout studies have
always had, the one "prepare or reuse" rule, and executors as one registry with their own options."""

from __future__ import annotations

import json
import re

import pytest

from ferlab.errors import FerlabError

# The .gitignore every study written so far holds: the owners must keep producing it byte for byte.
STUDY_GITIGNORE = """\
# Written by ferlab: the files of this study that stay on the machine that trained it (weights,
# checkpoints, the prepared data, caches, locks, live status). The rest is the study's record: commit it,
# and `ferlab study` on another clone trains only the trials that have no record yet.
/data/
/cache/
/status.json
/.driver.lock
/results.parquet
/report/report.html
/trials/*/model.keras
/trials/*/checkpoints/
/trials/*/tb/
/trials/*/exports/
/trials/*/worker.json
/trials/*/.lock
"""


def test_study_dir_names_the_layout_studies_have(tmp_path):
    from ferlab.studydir import StudyDir

    study = StudyDir(tmp_path)
    assert study.trial("a-s0").path == tmp_path / "trials" / "a-s0"
    assert study.run(StudyDir.trial_ref("a-s0")) == study.trial("a-s0")  # results.csv's run_dir column
    assert StudyDir.trial_ref("a-s0") == "trials/a-s0"
    assert [p.name for p in (study.study_file, study.results_csv, study.results_parquet, study.status_file,
                             study.driver_lock, study.data_dir, study.cache_dir, study.report_dir)] == [
        "study.json", "results.csv", "results.parquet", "status.json", ".driver.lock", "data", "cache", "report"]
    study.write_gitignore()
    assert study.gitignore_file.read_text() == STUDY_GITIGNORE
    study.gitignore_file.write_text("mine\n")
    study.write_gitignore()  # written once: a user's edits stay
    assert study.gitignore_file.read_text() == "mine\n"
    assert study.lock_holder() == "holder unknown"
    study.driver_lock.write_text(json.dumps({"host": "node-3", "pid": 42, "started": "2026-12-03 12:00:00"}))
    assert study.lock_holder() == "pid 42 on node-3 since 2026-12-03 12:00:00"


def test_prepare_or_reuse_prepares_once_reuses_and_refuses_other_settings(tmp_path, monkeypatch):
    from ferlab.data.prepare import PrepareConfig, is_prepared, prepare_or_reuse
    from ferlab.data.splits import SplitConfig

    def reuse(cfg, said=None, says="the spec says"):
        return prepare_or_reuse(cfg, out, says=says, fix="use another --out",
                                on_prepare=None if said is None else lambda: said.append(1))

    monkeypatch.chdir(tmp_path)
    out, said = tmp_path / "data", []
    cfg = PrepareConfig(source="synthetic", synthetic_per_class=4, split=SplitConfig(kind="test"), ferplus="votes.csv")
    first = reuse(cfg, said)
    assert is_prepared(out) and said == [1]
    # The same settings, a path spelled another way: the set is reused as it is, nothing prepared again.
    again = reuse(cfg.model_copy(update={"ferplus": str(tmp_path / "votes.csv")}), said)
    assert said == [1] and again.fingerprint == first.fingerprint
    # A set recorded before a setting existed reads as prepared with its default, as it was.
    everything = PrepareConfig(**cfg.model_dump())  # every setting stated, as a study states its [data]
    meta = json.loads((out / "data.json").read_text())
    del meta["config"]["split"]["test_part"]
    (out / "data.json").write_text(json.dumps(meta))
    assert reuse(everything).fingerprint == first.fingerprint
    with pytest.raises(FerlabError, match=rf"^{re.escape(str(out))}: prepared with split\.seed = 0 "
                                          r"\(the spec says 1\); use another --out$"):
        reuse(cfg.model_copy(update={"split": SplitConfig(kind="test", seed=1)}))
    # What a caller leaves unstated (a zoo build: the synthetic source's size) does not tell sets apart;
    # a caller that states every setting gets the set prepared with exactly those.
    unstated = PrepareConfig(source="synthetic", split=SplitConfig(kind="test"))
    assert reuse(unstated, says="--source says").fingerprint == first.fingerprint
    with pytest.raises(FerlabError, match=r"prepared with ferplus = 'votes.csv' \(the spec says None\); use"):
        reuse(PrepareConfig(**unstated.model_dump()))


def test_executors_are_one_registry_and_own_their_options():
    from ferlab.study.executors import (EXECUTORS, MAX_RETRIES, Executor, ExecutorOptions, LocalExecutor, RayExecutor,
                                        executor_class)

    assert EXECUTORS.names() == ("local", "ray") and all(issubclass(e, Executor) for e in EXECUTORS)
    assert executor_class("ray") is RayExecutor and RayExecutor().options.max_retries == MAX_RETRIES
    # Each executor takes the command line's options it has, and leaves the others.
    ray = RayExecutor.from_options(address="auto", max_retries=5, cpus=2)
    assert (ray.options.address, ray.options.max_retries) == ("auto", 5)
    assert LocalExecutor.from_options(address="auto", max_retries=5).options == ExecutorOptions()
    with pytest.raises(FerlabError, match=r"^--max-retries -1: input should be greater than or equal to 0"):
        RayExecutor.from_options(max_retries=-1)
    with pytest.raises(FerlabError, match=r"^--executor spark: unknown executor; choose one of local, ray$"):
        executor_class("spark")

