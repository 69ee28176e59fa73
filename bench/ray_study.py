"""The Ray executor: its overhead against the local executor, and kill-and-resume cycles.

``python -m bench ray`` runs the quickstart study (5 trials) in fresh study directories, in one run,
sides alternating over repetitions:

- ``local``: ``ferlab study --spec quickstart`` (one process, TensorFlow on every core);
- ``ray-1``: ``--executor ray`` on a Ray cluster already started here (one node, all cores), one trial
  at a time (``--cpus-per-trial`` = all cores);
- ``ray-2``: the same cluster, ``--cpus-per-trial 1``: one trial per core at once.

Wall seconds of the command (driver start, Ray connection, workers' TensorFlow start, training,
evaluation, tables); the cluster's start is timed apart (paid once per cluster, not per study).
Ratios are against ``local`` of the same repetition; the table keeps the median.

``python -m bench ray-faults`` runs the quickstart study on a two-node cluster (1 CPU each) through
``--cycles`` kills, alternating a worker (SIGKILL of the process training a trial past its first
checkpoint: Ray retries the task) and the driver (SIGKILL, then the same command again), then lets it
finish; it counts lost and duplicated trials in results.csv and epochs lost or repeated in each trial's
history, and checks the results against an uninterrupted run of the same cluster.

``python -m bench ray --plan STUDY_DIR --workers 1,2,4,8`` computes a finished study's wall time on N
workers (GPUs, or CPU nodes) from its measured per-trial times (``train_seconds`` in results.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench.common import REPO, write_table
from bench.ray_cluster import local_cluster

WORK = REPO / "bench" / "runs" / "ray"
STUDY = [sys.executable, "-m", "ferlab.cli", "study", "--spec", "quickstart", "--no-report"]


def _run(out: Path, extra: list[str], env: dict) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    r = subprocess.run([*STUDY, "--out", str(out), *extra], env=env, capture_output=True, text=True, cwd=WORK)
    if r.returncode != 0:
        raise RuntimeError(f"{out.name}: {r.stderr[-2000:]}")
    return time.perf_counter() - start


def overhead(reps: int) -> None:
    cores = os.cpu_count() or 1
    WORK.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with local_cluster(nodes=1, cpus_per_node=cores) as (address, env):
        cluster_seconds = time.perf_counter() - start
        sides = {"local": [], "ray-1": ["--executor", "ray", "--address", address, "--cpus-per-trial", str(cores)],
                 "ray-2": ["--executor", "ray", "--address", address, "--cpus-per-trial", "1"]}
        seconds: dict[str, list[float]] = {k: [] for k in sides}
        for rep in range(reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for side in order:
                seconds[side].append(_run(WORK / side, sides[side], env))
                print(f"rep {rep + 1} {side}: {seconds[side][-1]:.1f} s", flush=True)
    rows = []
    for side, values in seconds.items():
        ratios = [v / base for v, base in zip(values, seconds["local"])]
        rows.append({"side": side, "study": "quickstart", "trials": 5, "cores": cores, "reps": reps,
                     "seconds_median": round(statistics.median(values), 1),
                     "ratio_to_local": round(statistics.median(ratios), 3),
                     "cluster_start_seconds": round(cluster_seconds, 1) if side != "local" else None})
        print(rows[-1])
    print(write_table("ray_overhead", rows))


def _history_ok(trial: Path, epochs: int) -> bool:
    return list(pd.read_csv(trial / "history.csv")["epoch"]) == list(range(1, epochs + 1))


def faults(cycles: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    with local_cluster(nodes=2, cpus_per_node=1) as (address, env):
        ray_args = ["--executor", "ray", "--address", address]
        clean_seconds = _run(WORK / "clean", ray_args, env)
        out = WORK / "faults"
        shutil.rmtree(out, ignore_errors=True)
        kills, proc, last_kill, orphans = [], None, 0.0, 0
        while len(kills) < cycles:
            if proc is None or proc.poll() is not None:
                proc = subprocess.Popen([*STUDY, "--out", str(out), *ray_args], env=env, cwd=WORK,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = _checkpointed_since(out, last_kill)
            if target is None:
                if proc.poll() is not None and proc.returncode == 0 and _all_done(out):
                    raise RuntimeError(f"the study finished after {len(kills)} kills; use fewer --cycles")
                time.sleep(0.1)
                continue
            if len(kills) % 2 == 0:  # a worker: Ray retries its task
                pid = json.loads((target / "worker.json").read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                kills.append(("worker", target.name))
            else:  # the driver: run the same command again
                pid = json.loads((target / "worker.json").read_text())["pid"]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append(("driver", target.name))
                orphans += not _gone(pid, 60)  # Ray stops a dead driver's tasks
            last_kill = time.time()
            print(f"kill {len(kills)}: {kills[-1][0]} during {target.name}", flush=True)
        if proc.poll() is None:
            proc.wait()
        final = subprocess.run([*STUDY, "--out", str(out), *ray_args], env=env, cwd=WORK, capture_output=True, text=True)
        if final.returncode != 0:
            raise RuntimeError(final.stderr[-2000:])
    table = pd.read_csv(out / "results.csv")
    clean = pd.read_csv(WORK / "clean" / "results.csv")
    expected = set(clean["trial_id"])
    lost = len(expected - set(table["trial_id"]))
    duplicated = int(table["trial_id"].duplicated().sum())
    bad_history = sum(not _history_ok(out / "trials" / t, 5) for t in table["trial_id"])
    cols = ["trial_id", "val_accuracy", "test_accuracy", "test_loss", "macro_f1"]
    a = clean[cols].sort_values("trial_id").reset_index(drop=True)
    b = table[cols].sort_values("trial_id").reset_index(drop=True)
    same = bool(a.shape == b.shape and (a.drop(columns="trial_id").to_numpy() == b.drop(columns="trial_id").to_numpy()).all())
    row = {"study": "quickstart", "nodes": 2, "cycles": cycles,
           "worker_kills": sum(k == "worker" for k, _ in kills), "driver_kills": sum(k == "driver" for k, _ in kills),
           "trials": len(expected), "workers_left_running_by_killed_driver": orphans, "lost": lost, "duplicated": duplicated, "histories_wrong": bad_history,
           "metrics_equal_to_uninterrupted": same, "uninterrupted_seconds": round(clean_seconds, 1)}
    print(row)
    print(write_table("ray_faults", [row]))


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _checkpointed_since(out: Path, since: float) -> Path | None:
    """An unfinished trial whose newest epoch checkpoint was written after ``since``."""
    for trial in sorted((out / "trials").glob("*")) if (out / "trials").is_dir() else []:
        latest = trial / "checkpoints" / "LATEST"
        if latest.is_file() and latest.stat().st_mtime > since and not (trial / "metrics.json").exists() \
                and (trial / "worker.json").is_file():
            return trial
    return None


def _all_done(out: Path) -> bool:
    return (out / "results.csv").is_file() and len(pd.read_csv(out / "results.csv")) == 5


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of trials on ``workers`` identical workers, longest trial first to the least-loaded worker
    (what Ray's queue does with the grid's trials when each asks for one worker); at most 4/3 of the optimum."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def plan(path: Path, workers: list[int]) -> None:
    """Study wall time on N workers from the measured per-trial times of a finished study (train_seconds)."""
    table = pd.read_csv(path / "results.csv" if path.is_dir() else path)
    seconds = [float(s) for s in table["train_seconds"].dropna()]
    print(f"{path}: {len(seconds)} trials, {sum(seconds) / 60:.1f} min of training in all, "
          f"longest {max(seconds) / 60:.1f} min")
    print("| workers | study wall time | speed-up |\n|---|---|---|")
    for n in workers:
        t = makespan(seconds, n)
        print(f"| {n} | {t / 60:.1f} min | {sum(seconds) / t:.2f}x |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ray", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2, help="repetitions of the overhead comparison")
    parser.add_argument("--cycles", type=int, default=5, help="kill-and-resume cycles (ray-faults)")
    parser.add_argument("--faults", action="store_true", help="run the fault cycles instead of the overhead")
    parser.add_argument("--plan", type=Path, help="a finished study directory (or results.csv): its wall time on --workers")
    parser.add_argument("--workers", default="1,2,4,8,16,32", help="worker counts for --plan")
    args = parser.parse_args(argv)
    if args.plan:
        plan(args.plan, [int(n) for n in args.workers.split(",")])
    elif args.faults:
        faults(args.cycles)
    else:
        overhead(args.reps)
