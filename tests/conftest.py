"""Shared fixtures. Real-data fixtures read ../shared (beside the repository) and skip with a printed
reason when it is absent; CI has it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERLAB_SHARED", REPO.parent / "shared"))
FER2013 = SHARED / "data" / "fer2013"
FERPLUS = SHARED / "data" / "ferplus"
WEIGHTS = SHARED / "weights"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if str(REPO) not in sys.path:  # bench/ (scenes, photographs, load-test clients) lives beside src/
    sys.path.insert(0, str(REPO))


def require(path: Path, what: str) -> Path:
    """Skip (with the reason printed in the summary, pytest -ra) when a shared resource is missing."""
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: put ../shared beside the repository or set FERLAB_SHARED")
    return path


@pytest.fixture(scope="session")
def fer2013_faces():
    """The real FER2013 image folder, loaded once per test session."""
    from ferlab.data.sources import load_image_folder

    return load_image_folder(require(FER2013, "FER2013 image folder"))


@pytest.fixture(scope="session")
def fer2013_paper5(fer2013_faces, tmp_path_factory):
    """A small leak-free paper5 split of the real FER2013 (600 train / 200 test per class, seed 0)."""
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.data.splits import SplitConfig

    cfg = PrepareConfig(source=str(FER2013), protocol="paper5",
                        split=SplitConfig(kind="paper", train_per_class=600, test_per_class=200, seed=0))
    return prepare(cfg, tmp_path_factory.mktemp("fer2013-paper5") / "data", faces=fer2013_faces)


@pytest.fixture(scope="session")
def trained_run(fer2013_paper5, tmp_path_factory):
    """A small model trained on real FER2013 faces: the run directory (model.keras, metrics.json, ...).

    ferlab's small CNN (fercnn, avg pooling) for 6 epochs on 3,000 faces: well above chance (about 40%),
    trained in under a minute on 2 cores. Deployment tests export, serve and run it.
    """
    from ferlab.train.config import resolve_run_config
    from ferlab.train.run import train_run

    cfg = resolve_run_config({
        "data": str(fer2013_paper5.path),
        "model": {"backbone": "fercnn", "pooling": "avg", "weights": "none"},
        "train": {"epochs": 6, "batch_size": 64, "learning_rate": 2e-3, "seed": 0, "latency_runs": 3,
                  "tensorboard": False},
    })
    run_dir = tmp_path_factory.mktemp("trained-run") / "run"
    metrics = train_run(cfg, run_dir)
    assert metrics["status"] == "ok", metrics
    return run_dir


def assert_one_line_error(result, *needles: str, code: int = 2) -> str:
    """A finished CLI subprocess failed with one ``error:`` line holding every needle, and no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def invoke(*args: str):
    """Run the CLI in this process (the model's TensorFlow is already loaded here)."""
    from typer.testing import CliRunner

    from ferlab.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


# One TensorFlow thread per trial, in the local quickstart study and in every Ray worker of tests/test_ray.py:
# results then match across executors bit for bit (TF's reduction order depends on its thread count).
SINGLE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


QUICKSTART_COMMAND = [sys.executable, "-m", "ferlab.cli", "study", "--spec", "quickstart"]
_quickstart: dict = {}  # the background quickstart study: process, folder, start time


def pytest_collection_finish(session):
    """Start the README's main job as soon as the tests are collected, if any of them needs it.

    It trains on one core (SINGLE_THREAD) for about 3.5 min; started here, it runs beside the tests that come
    before its first user on the other core instead of leaving that core idle (about 2.5 min of the suite).
    """
    if not any("quickstart_study" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    import subprocess
    import tempfile
    import time

    where = Path(tempfile.mkdtemp(prefix="ferlab-quickstart-"))
    logs = (open(where / "stdout.log", "w"), open(where / "stderr.log", "w"))
    _quickstart.update(where=where, logs=logs, start=time.time(), process=subprocess.Popen(
        [*QUICKSTART_COMMAND, "--out", str(where / "qs")], stdout=logs[0], stderr=logs[1], text=True, cwd=where,
        env={**os.environ, **SINGLE_THREAD}))


def pytest_sessionfinish(session, exitstatus):
    if _quickstart:
        import shutil

        if _quickstart["process"].poll() is None:  # the session stopped early (-x, Ctrl-C)
            _quickstart["process"].kill()
            _quickstart["process"].wait()
        for log in _quickstart["logs"]:
            log.close()
        shutil.rmtree(_quickstart["where"], ignore_errors=True)


@pytest.fixture(scope="session")
def quickstart_study():
    """The README's main job run once through the CLI (local executor), started in the background when the tests
    were collected: (study dir, seconds it took, CompletedProcess)."""
    import subprocess

    process = _quickstart["process"]
    process.wait(timeout=900)
    where = _quickstart["where"]
    for log in _quickstart["logs"]:
        log.flush()
    # Its end: the last write to its logs (the process may have finished long before this test asked).
    seconds = max((where / name).stat().st_mtime for name in ("stdout.log", "stderr.log")) - _quickstart["start"]
    result = subprocess.CompletedProcess(process.args, process.returncode, (where / "stdout.log").read_text(),
                                         (where / "stderr.log").read_text())
    return where / "qs", seconds, result
