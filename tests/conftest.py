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


@pytest.fixture(scope="session")
def quickstart_study(tmp_path_factory):
    """The README's main job run once through the CLI (local executor): (study dir, seconds, CompletedProcess)."""
    import subprocess
    import time

    where = tmp_path_factory.mktemp("quickstart")
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ferlab.cli", "study", "--spec", "quickstart", "--out", str(where / "qs")],
                       capture_output=True, text=True, cwd=where, timeout=900, env={**os.environ, **SINGLE_THREAD})
    return where / "qs", time.perf_counter() - start, r
