"""The Ray executor on a real two-node Ray cluster started here: the quickstart study gives the local
executor's results, survives a worker killed mid-trial, refuses a second driver and logs to MLflow."""

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

from conftest import SINGLE_THREAD

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]' (it holds ferlab[ray])")
pytest.importorskip("mlflow", reason="MLflow is not installed: pip install -e '.[test]' (it holds ferlab[mlflow])")

TIME_COLUMNS = ["train_seconds", "latency_ms"]
# Two of the quickstart's five trials on two single-CPU nodes: one round of trials instead of three, and
# still a worker killed, a retry, a trial on each node and a comparison with the local executor.
ONLY = ["fercnn-avg-finetune-48px-s0", "fercnn-max-finetune-48px-s0"]


@pytest.fixture(scope="module")
def ray_cluster():
    from bench.ray_cluster import local_cluster

    with local_cluster(nodes=2, cpus_per_node=1, env=SINGLE_THREAD) as cluster:
        yield cluster


def _comparable(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    table = table[table["trial_id"].isin(ONLY)].drop(columns=TIME_COLUMNS).sort_values("trial_id").reset_index(drop=True)
    table["run_dir"] = table["run_dir"].astype(str)
    return table


def _kill_a_worker_mid_trial(out: Path, proc: subprocess.Popen) -> tuple[str, dict]:
    """SIGKILL the worker of the first trial seen past its first epoch checkpoint and not finished."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, "the study finished before a worker could be killed"
        for trial in sorted((out / "trials").glob("*")) if (out / "trials").is_dir() else []:
            if (trial / "checkpoints" / "LATEST").is_file() and not (trial / "metrics.json").exists() \
                    and (trial / "worker.json").is_file():
                worker = json.loads((trial / "worker.json").read_text())
                os.kill(worker["pid"], signal.SIGKILL)
                return trial.name, worker
        time.sleep(0.1)
    raise AssertionError("no trial reached its first checkpoint in 300 s")


def test_ray_study_matches_local_survives_a_killed_worker_and_tracks(ray_cluster, quickstart_study, tmp_path):
    address, env = ray_cluster
    local_out, local_seconds, local = quickstart_study
    assert local.returncode == 0, local.stderr[-3000:]
    out, mlruns = tmp_path / "ray", tmp_path / "mlruns"
    cmd = [sys.executable, "-m", "ferlab.cli", "study", "--spec", "quickstart", "--out", str(out), "--no-report",
           "--only", ",".join(ONLY)]
    start = time.perf_counter()
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([*cmd, "--executor", "ray", "--address", address, "--track", f"mlflow:{mlruns.as_uri()}"],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        killed, worker = _kill_a_worker_mid_trial(out, proc)
        # While the first driver runs, a second one on the same study directory is refused with one line.
        second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        status = json.loads((out / "status.json").read_text())
        assert proc.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    ray_seconds = time.perf_counter() - start

    assert second.returncode == 2
    assert "another driver is running this study" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert status["executor"] == "ray" and status["counts"]["running"] >= 1
    assert {t["trial_id"]: t["state"] for t in status["trials"]}[killed] == "running"

    # The killed trial was retried by Ray and resumed from its checkpoint: every epoch recorded once.
    retried = json.loads((out / "trials" / killed / "worker.json").read_text())
    assert retried["attempt"] == 2 and retried["pid"] != worker["pid"]
    assert list(pd.read_csv(out / "trials" / killed / "history.csv")["epoch"]) == [1, 2, 3, 4, 5]

    a, b = _comparable(local_out / "results.csv"), _comparable(out / "results.csv")
    assert len(pd.read_csv(out / "results.csv")) == len(b) == len(ONLY)
    assert b["trial_id"].is_unique and (b["status"] == "ok").all()
    # model.keras embeds Python object ids in its config, so its size may differ by ~1 kB between saves.
    pd.testing.assert_series_equal(a.pop("model_size_mb"), b.pop("model_size_mb"), atol=0.011)
    pd.testing.assert_frame_equal(a, b)  # every accuracy, loss and metric identical to the local executor's
    final = json.loads((out / "status.json").read_text())
    assert final["counts"] == {"pending": 0, "running": 0, "done": len(ONLY), "failed": 0, "interrupted": 0}

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    client = MlflowClient(tracking_uri=mlruns.as_uri())
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert sorted(r.data.tags["ferlab.trial_id"] for r in runs) == sorted(b["trial_id"])  # one run per trial
    assert all(r.info.status == "FINISHED" for r in runs)
    run = next(r for r in runs if r.data.tags["ferlab.trial_id"] == killed)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1, 2, 3, 4, 5]
    assert run.data.params["model.pooling"] == b.loc[b["trial_id"] == killed, "pooling"].item()
    assert {f.path for f in client.list_artifacts(run.info.run_id)} >= {"metrics.json", "confusion.csv", "model.keras"}
    print(f"quickstart: local executor {local_seconds:.0f} s; Ray, 2 nodes x 1 CPU, one worker killed "
          f"({killed}): {ray_seconds:.0f} s")
