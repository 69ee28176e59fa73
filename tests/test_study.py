"""The study runner: spec validation, resumability after SIGKILL, recorded failures, the quick start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TINY_SPEC = """
name = "tiny"
[data]
source = "synthetic"
protocol = "paper5"
synthetic_per_class = 150
[data.split]
kind = "paper"
train_per_class = 80
test_per_class = 30
val_fraction = 0.25
[grid]
backbones = ["fercnn"]
poolings = ["avg", "max"]
seeds = [0]
input_sizes = [48]
[model]
weights = "none"
dropout = 0.2
[train]
epochs = 4
batch_size = 32
deterministic = true
tensorboard = false
latency_runs = 0
{extra}
"""


def ferlab(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900, **kw)


def write_spec(path: Path, extra: str = "") -> Path:
    path.write_text(TINY_SPEC.format(extra=extra))
    return path


@pytest.mark.parametrize("change,needle", [
    ("[grid]\nbackbones = []", "grid.backbones"),
    ("colour = 'blue'", "colour: unknown key"),
    ("[train]\nepochs = 'many'", "train.epochs"),
])
def test_invalid_spec_names_the_key(tmp_path, change, needle):
    text = TINY_SPEC.format(extra="")
    if change.startswith("[grid]"):
        text = text.replace('backbones = ["fercnn"]', "backbones = []")
    elif change.startswith("[train]"):
        text = text.replace("epochs = 4", "epochs = 'many'")
    else:
        text = change + "\n" + text
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    r = ferlab("study", "--spec", str(spec), "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert not (tmp_path / "s").exists()


def test_unknown_backbone_lists_the_valid_ones(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY_SPEC.format(extra="").replace('"fercnn"', '"resnet9000"'))
    r = ferlab("study", "--spec", str(spec), "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2 and "grid.backbones: unknown backbone 'resnet9000'" in r.stderr and "mobilenetv2" in r.stderr


def _comparable(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return table.drop(columns=["train_seconds", "latency_ms"]).sort_values("trial_id").reset_index(drop=True)


def test_sigkill_mid_trial_then_resume_gives_the_same_results(tmp_path):
    spec = write_spec(tmp_path / "tiny.toml")
    # The uninterrupted reference runs beside the killed-and-resumed one (each trial is deterministic).
    with open(tmp_path / "clean.log", "w") as log:
        clean = subprocess.Popen([sys.executable, "-m", "ferlab.cli", "study", "--spec", str(spec), "--out",
                                  str(tmp_path / "clean"), "--no-report"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=log)

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ferlab.cli", "study", "--spec", str(spec), "--out", str(out),
                             "--no-report"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill while the second trial is mid-way (its first epoch checkpoint exists, it is not finished).
    target = out / "trials" / "fercnn-max-finetune-48px-s0"
    deadline = time.time() + 600
    while time.time() < deadline and not (target / "checkpoints" / "LATEST").exists():
        assert proc.poll() is None, "study finished before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "metrics.json").exists()
    killed_results = pd.read_csv(out / "results.csv")
    assert list(killed_results["trial_id"]) == ["fercnn-avg-finetune-48px-s0"]

    resumed = ferlab("study", "--spec", str(spec), "--out", str(out), "--no-report", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    history = pd.read_csv(target / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]  # no epoch lost or repeated in the record
    assert clean.wait(timeout=900) == 0, (tmp_path / "clean.log").read_text()
    a, b = _comparable(tmp_path / "clean" / "results.csv"), _comparable(out / "results.csv")
    assert len(b) == 2 and b["trial_id"].is_unique
    # model.keras embeds Python object ids in its config, so its size may differ by ~1 kB between saves.
    pd.testing.assert_series_equal(a.pop("model_size_mb"), b.pop("model_size_mb"), atol=0.011)
    pd.testing.assert_frame_equal(a, b)  # every accuracy, loss and metric identical


def test_ctrl_c_says_how_to_resume_and_status_stops_saying_running(tmp_path):
    """SIGINT (Ctrl-C) mid-trial: one line with the command to rerun, exit 130, the trial marked interrupted in
    status.json (not running), and the same command then resumes it to the end."""
    import shlex

    spec = tmp_path / "one.toml"
    spec.write_text(TINY_SPEC.format(extra="").replace('poolings = ["avg", "max"]', 'poolings = ["avg"]')
                    .replace("epochs = 4", "epochs = 3"))
    out = tmp_path / "s"
    args = ["study", "--spec", str(spec), "--out", str(out), "--no-report"]
    # As at a terminal: SIGINT handled even when this test runs in a background job (which ignores it, and the
    # ignoring is inherited).
    proc = subprocess.Popen([sys.executable, "-m", "ferlab.cli", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run = out / "trials" / "fercnn-avg-finetune-48px-s0"
    deadline = time.time() + 600
    while time.time() < deadline and not (run / "checkpoints" / "LATEST").exists():
        assert proc.poll() is None, "study finished before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [f"interrupted; rerun the same command to resume: ferlab {shlex.join(args)}"]
    assert not (run / "metrics.json").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["counts"] == {"pending": 0, "running": 0, "done": 0, "failed": 0, "interrupted": 1}
    assert status["trials"][0]["state"] == "interrupted"

    resumed = ferlab(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2, 3]
    assert json.loads((out / "status.json").read_text())["counts"]["done"] == 1


def test_failed_trial_is_recorded_and_the_study_goes_on(tmp_path):
    spec = write_spec(tmp_path / "tiny.toml", extra='[overrides.fercnn.model]\nweights = "missing.weights.h5"')
    spec.write_text(spec.read_text().replace("epochs = 4", "epochs = 1"))
    r = ferlab("study", "--spec", str(spec), "--out", str(tmp_path / "s"), "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "s" / "results.csv")
    assert list(table["status"]) == ["failed", "failed"]
    assert table["reason"].str.contains("missing.weights.h5").all()


def test_corrupt_metrics_file_is_a_clear_error_and_nothing_is_overwritten(tmp_path):
    spec = write_spec(tmp_path / "tiny.toml").read_text().replace("epochs = 4", "epochs = 1")
    (tmp_path / "tiny.toml").write_text(spec)
    out = tmp_path / "s"
    study = ("study", "--spec", "tiny.toml", "--out", str(out), "--no-report", "--only", "*-avg-*")  # one trial
    assert ferlab(*study, cwd=tmp_path).returncode == 0
    metrics = out / "trials" / "fercnn-avg-finetune-48px-s0" / "metrics.json"
    metrics.write_text("{not json")
    before = (out / "results.csv").read_bytes()
    r = ferlab(*study, cwd=tmp_path)
    assert r.returncode == 2 and "metrics.json" in r.stderr and "corrupt" in r.stderr
    assert metrics.read_text() == "{not json" and (out / "results.csv").read_bytes() == before
    metrics.write_text(json.dumps({"metrics_version": 0, "status": "ok"}))
    r = ferlab(*study, cwd=tmp_path)
    assert r.returncode == 2 and "another ferlab version" in r.stderr


def test_train_and_cross_evaluate_cli(tmp_path):
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.data.splits import SplitConfig

    small = dict(kind="paper", train_per_class=60, test_per_class=30, val_fraction=0.25)
    prepare(PrepareConfig(source="synthetic", synthetic_per_class=120, split=SplitConfig(**small, seed=0)), tmp_path / "a")
    prepare(PrepareConfig(source="synthetic", synthetic_per_class=120, split=SplitConfig(**small, seed=1)), tmp_path / "b")
    (tmp_path / "run.toml").write_text(
        'data = "a"\n[model]\nbackbone = "fercnn"\npooling = "avg"\n[train]\nepochs = 2\nlatency_runs = 2\n'
        '[train.augment]\nflip = true\nerasing = 0.3\n')
    r = ferlab("train", "--config", "run.toml", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    for name in ("config.json", "history.csv", "metrics.json", "confusion.csv", "predictions.csv", "model.keras"):
        assert (tmp_path / "run" / name).is_file(), name
    assert not (tmp_path / "run" / "checkpoints").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["selected_on"] == "val_accuracy" and 1 <= metrics["best_epoch"] <= 2
    assert set(metrics["test"]["per_class"]) == {"angry", "anxious", "happy", "neutral", "sad"}
    r = ferlab("evaluate", "run", "--data", "b", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and list((tmp_path / "run" / "evaluations").glob("*-test.json"))
    r = ferlab("evaluate", "run", "--data", "b", "--tta", "flip", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    flipped = json.loads(next((tmp_path / "run" / "evaluations").glob("*-test-tta-flip.json")).read_text())
    assert flipped["tta"] == "flip" and 0.0 <= flipped["accuracy"] <= 1.0
    r = ferlab("evaluate", "run", "--data", "b", "--tta", "rotate", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: --tta: unknown test-time augmentation "
                                                                  "'rotate'; choose one of none, flip"]


def test_train_with_missing_data_leaves_nothing_behind(tmp_path):
    """A wrong data path fails before the run directory is made, so the corrected rerun is not blocked
    (it used to leave config.json, and the rerun was refused as "another configuration")."""
    (tmp_path / "run.toml").write_text('data = "nope"\n[model]\nbackbone = "fercnn"\n[train]\nepochs = 1\nlatency_runs = 0\n')
    r = ferlab("train", "--config", "run.toml", "--out", "run", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: nope: not a prepared data set")
    assert not (tmp_path / "run").exists()  # nothing blocks the corrected rerun


def test_only_runs_the_matching_trials(tmp_path):
    spec = write_spec(tmp_path / "tiny.toml").read_text().replace("epochs = 4", "epochs = 1")
    (tmp_path / "tiny.toml").write_text(spec)
    out = tmp_path / "s"
    r = ferlab("study", "--spec", "tiny.toml", "--out", str(out), "--only", "*-max-*", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(out / "results.csv")["trial_id"]) == ["fercnn-max-finetune-48px-s0"]
    assert not (out / "trials" / "fercnn-avg-finetune-48px-s0").exists()
    r = ferlab("study", "--spec", "tiny.toml", "--out", str(out), "--only", "resnet*", "--no-report", cwd=tmp_path)
    assert r.returncode == 2 and "--only: resnet* matches no trial" in r.stderr


@pytest.mark.parametrize("name,n_trials", [("quickstart", 5), ("paper", 32), ("paper-cpu", 32), ("pooling-finetune", 18),
                                          ("pooling-finetune-naive", 6)])
def test_shipped_specs_expand_to_valid_trials(name, n_trials):
    from ferlab.study.spec import expand_trials, load_spec

    trials = expand_trials(load_spec(name), "prepared")
    assert len(trials) == n_trials and len({t.trial_id for t in trials}) == n_trials
    if name == "paper":  # the study's recipe: 224 px, fine-tuned, /255, 50 epochs, last epoch evaluated
        cfg = trials[0].config
        assert (cfg.model.input_size, cfg.model.mode, cfg.model.preprocessing, cfg.train.epochs, cfg.train.select_best) \
            == (224, "finetune", "paper", 50, False)
    if name == "paper-cpu":  # MobileNetV2 frozen with offline weights, the rest from scratch
        modes = {t.backbone: t.mode for t in trials}
        assert modes["mobilenetv2"] == "frozen" and modes["resnet50"] == "finetune"


@pytest.mark.parametrize("args,needle", [
    (["--executor", "spark"], "--executor spark: unknown executor; choose one of local, ray"),
    (["--track", "wandb"], "--track wandb: unknown tracker; choose one of: mlflow, mlflow:URI"),
    (["--precision", "half"], "--precision half: choose float32 or mixed"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial: must be at least"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: nothing answers there"),
])
def test_bad_study_options_are_one_line_and_train_nothing(tmp_path, args, needle):
    r = ferlab("study", "--spec", str(write_spec(tmp_path / "tiny.toml")), "--out", str(tmp_path / "s"), *args,
               cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / "s" / "trials").exists()
    if "--executor" in args:  # checked before the study directory is made
        assert not (tmp_path / "s").exists()


def test_a_second_driver_on_a_study_is_refused(tmp_path):
    from ferlab.io import file_lock

    out = tmp_path / "s"
    holder = '{"host": "lab-node-3", "pid": 4242, "started": "2026-12-03 12:00:00"}'
    with file_lock(out / ".driver.lock", blocking=False, holder=holder) as locked:
        assert locked
        r = ferlab("study", "--spec", str(write_spec(tmp_path / "tiny.toml")), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {out}: another driver is running this study (pid 4242 on lab-node-3 since 2026-12-03 12:00:00); "
        f"wait for it to finish, or stop it, or choose another --out"]
    assert not (out / "trials").exists()


def test_mixed_precision_trial_and_status_file(tmp_path):
    spec = tmp_path / "one.toml"
    spec.write_text(TINY_SPEC.format(extra="").replace('poolings = ["avg", "max"]', 'poolings = ["avg"]')
                    .replace("epochs = 4", "epochs = 1"))
    r = ferlab("study", "--spec", str(spec), "--out", str(tmp_path / "s"), "--no-report", "--precision", "mixed",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "s" / "trials" / "fercnn-avg-finetune-48px-s0"
    assert json.loads((run / "config.json").read_text())["train"]["mixed_precision"] is True
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
    from ferlab.models import load_model

    model = load_model(run / "model.keras")
    assert model.get_layer("classifier").dtype_policy.name == "float32"  # softmax stays float32
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
    status = json.loads((tmp_path / "s" / "status.json").read_text())
    assert status["study"] == "tiny" and status["executor"] == "local"
    assert status["counts"] == {"pending": 0, "running": 0, "done": 1, "failed": 0, "interrupted": 0}
    assert status["trials"][0] | {"pid": 0} == {"trial_id": "fercnn-avg-finetune-48px-s0", "state": "done", "epoch": 1,
                                                "epochs": 1, "host": status["trials"][0]["host"], "pid": 0}


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def test_a_committed_study_resumes_on_a_fresh_clone(quickstart_study, tmp_path):
    """The workflow of docs/studies.md: commit a study's record, clone it elsewhere, and `ferlab study` trains
    only the trials without a record; `ferlab report` rebuilds the same tables from the record alone."""
    import shutil

    study, _, r = quickstart_study
    assert r.returncode == 0, r.stderr[-3000:]
    origin = tmp_path / "origin"
    shutil.copytree(study, origin / "qs")  # everything the machine wrote, weights included
    _git("init", "-q", cwd=origin)
    _git("add", "-A", cwd=origin)
    _git("commit", "-qm", "study", cwd=origin)
    committed = _git("ls-files", cwd=origin).split()
    trials = sorted(pd.read_csv(study / "results.csv")["trial_id"])
    assert len(trials) == 5
    for trial in trials:  # the record of every trial, and nothing machine-bound
        assert {f"qs/trials/{trial}/{f}" for f in ("config.json", "history.csv", "metrics.json", "confusion.csv",
                                                   "predictions.csv")} <= set(committed)
    assert not [f for f in committed if f.endswith(".keras") or "/data/" in f or "/tb/" in f or "checkpoints" in f]

    clone = tmp_path / "clone"
    _git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    r = ferlab("report", "qs", cwd=clone)  # no weights, no prepared data: the record alone
    assert r.returncode == 0, r.stderr
    tables = sorted(p.name for p in (study / "report" / "tables").glob("*.csv"))
    assert tables and all((clone / "qs/report/tables" / t).read_bytes() == (study / "report/tables" / t).read_bytes()
                          for t in tables)

    # A half-finished study: the last trial's record never made it into the repository.
    missing, kept = trials[-1], trials[:-1]
    shutil.rmtree(clone / "qs" / "trials" / missing)
    before = {t: (clone / "qs/trials" / t / "metrics.json").read_bytes() for t in kept}
    r = ferlab("study", "--spec", "quickstart", "--out", "qs", "--no-report", cwd=clone)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (clone / "qs/trials" / missing / "model.keras").is_file()  # trained here
    for t in kept:  # reused as committed, not retrained
        assert (clone / "qs/trials" / t / "metrics.json").read_bytes() == before[t]
        assert not (clone / "qs/trials" / t / "model.keras").exists()
    assert sorted(pd.read_csv(clone / "qs/results.csv")["trial_id"]) == trials

    # A record made with other settings is one clear line, and nothing is trained or rewritten.
    config_file = clone / "qs/trials" / kept[0] / "config.json"
    config = json.loads(config_file.read_text())
    config["train"]["epochs"] = 99
    config_file.write_text(json.dumps(config))
    r = ferlab("study", "--spec", "quickstart", "--out", "qs", "--no-report", cwd=clone)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {Path('qs/trials') / kept[0] / 'config.json'}: this finished trial was trained with train.epochs = 99 "
        f"(the spec says 5); move its directory out of the study to train it again with the spec's settings, or "
        f"use another --out"], r.stderr
