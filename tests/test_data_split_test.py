"""``--split test``: an evaluation-only data set (every usable image in test), e.g. another corpus for a
cross-data-set check with ``ferlab evaluate RUN --data DIR``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from ferlab.data.prepare import PrepareConfig, prepare
from ferlab.data.splits import SplitConfig


def ferlab(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_every_image_goes_to_test(tmp_path):
    # synthetic: 10 per original class; paper5 drops disgust and merges fear + surprise into anxious.
    data = prepare(PrepareConfig(source="synthetic", synthetic_per_class=10, split=SplitConfig(kind="test")),
                   tmp_path / "eval")
    assert data.meta["config"]["split"]["kind"] == "test"
    assert data.meta["totals"] == {"train": 0, "val": 0, "test": 60}
    assert data.meta["counts"]["test"] == {"angry": 10, "anxious": 20, "happy": 10, "neutral": 10, "sad": 10}
    assert data.meta["warnings"] == []
    x, y = data.arrays("test")
    assert x.shape == (60, 48, 48, 1) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [10, 20, 10, 10, 10]
    assert set(data.manifest["split"]) == {"test"}
    assert data.arrays("train")[0].shape == (0, 48, 48, 1) and len(data.arrays("val")[1]) == 0


def test_still_leak_free(tmp_path):
    """Duplicates are still collapsed: an evaluation set must not count one face twice."""
    from ferlab.data.faceset import FaceSet
    from ferlab.data.synthetic import load_synthetic

    faces = load_synthetic(per_class=5)
    twice = FaceSet(np.concatenate([faces.images, faces.images[:3]]),
                    pd.concat([faces.provenance, faces.provenance.iloc[:3]], ignore_index=True),
                    faces.name)
    data = prepare(PrepareConfig(source="synthetic", protocol="fer7", split=SplitConfig(kind="test")),
                   tmp_path / "eval", faces=twice)
    assert data.meta["totals"]["test"] == 35 and data.meta["dropped"]["duplicate_copies_dropped"] == 3
    assert data.manifest["hash"].is_unique


def test_cli(tmp_path):
    r = ferlab("data", "prepare", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "test (" in " ".join(r.stdout.split()), r.stdout
    r = ferlab("data", "prepare", "--synthetic-per-class", "10", "--split", "test", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith("warning")], r.stderr
    out = tmp_path / "prepared" / "synthetic-paper5-test-seed0"
    meta = json.loads((out / "data.json").read_text())
    assert meta["config"]["split"]["kind"] == "test" and meta["totals"] == {"train": 0, "val": 0, "test": 60}


def test_evaluate_a_run_on_it(tmp_path):
    """What the kind is for: ``ferlab evaluate RUN --data DIR`` scores a run on every image."""
    import keras

    from ferlab.train.cross import evaluate_run

    data = prepare(PrepareConfig(source="synthetic", synthetic_per_class=10, split=SplitConfig(kind="test")),
                   tmp_path / "eval")
    run = tmp_path / "run"
    run.mkdir()
    classes = list(data.classes)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(len(classes), activation="softmax")])
    model.save(run / "model.keras")
    (run / "metrics.json").write_text(json.dumps({"metrics_version": 1, "status": "ok", "classes": classes}))
    result = evaluate_run(run, data.path)
    assert result["data"]["split"] == "test" and 0.0 <= result["accuracy"] <= 1.0
    assert result["n"] == 60


def test_training_on_it_is_refused_before_anything_is_written(tmp_path):
    from ferlab.errors import FerlabError
    from ferlab.train.config import resolve_run_config
    from ferlab.train.run import train_run

    data = prepare(PrepareConfig(source="synthetic", synthetic_per_class=10, split=SplitConfig(kind="test")),
                   tmp_path / "eval")
    cfg = resolve_run_config({"data": str(data.path), "model": {"backbone": "fercnn"}, "train": {"epochs": 1}})
    try:
        train_run(cfg, tmp_path / "run")
    except FerlabError as exc:
        assert "evaluation-only" in str(exc) and "ferlab evaluate" in str(exc)
    else:
        raise AssertionError("training on an evaluation-only set was not refused")
    assert not (tmp_path / "run").exists()
