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

# Tests that share an expensive fixture run on one pytest-xdist worker (the README's command runs two), so the
# fixture is built once: a session fixture by name, else the module whose fixtures they share.
SHARED_ONCE = ("quickstart_study", "trained_run")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    """One scratch folder per test run, seen by every xdist worker (they inherit the environment): the
    background quickstart study lives there, started by whichever worker collects first."""
    if not _is_worker(config):
        import tempfile

        os.environ["FERLAB_TEST_RUN"] = tempfile.mkdtemp(prefix="ferlab-tests-")


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = next((name for name in SHARED_ONCE if name in item.fixturenames), None)
        if group is None and any(defs[-1].scope == "module"
                                 for defs in item._fixtureinfo.name2fixturedefs.values()):
            group = item.nodeid.split("::")[0]
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def _quickstart_dir() -> Path:
    return Path(os.environ["FERLAB_TEST_RUN"]) / "quickstart"


def pytest_collection_finish(session):
    """Start the README's main job as soon as the tests are collected, if any of them needs it.

    It trains on one core (SINGLE_THREAD) for about 3.5 min; started here, it runs beside the tests that come
    before its first user instead of after them. Under xdist every worker collects the same tests; the first
    to make the folder starts the study, and its users (one worker) wait for the exit status it writes.
    """
    config = session.config
    if _is_worker(config) and config.getvalue("loadgroup"):  # xdist groups by a suffix it adds to the test ids
        ungrouped = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if ungrouped:
            raise pytest.UsageError(f"--dist loadgroup did not group {ungrouped[0]} under pytest {pytest.__version__}; "
                                    "install the pinned test extras: pip install -e '.[test]'")
    if not any("quickstart_study" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    import subprocess
    import time

    where = _quickstart_dir()
    try:
        where.mkdir()
    except FileExistsError:  # another worker started it
        return
    (where / "start").write_text(repr(time.time()))
    # The shell writes the exit status when the study ends, for whichever process waits on it.
    process = subprocess.Popen(["sh", "-c", '"$@" >stdout.log 2>stderr.log; echo $? >rc.part; mv rc.part rc', "sh",
                                *QUICKSTART_COMMAND, "--out", str(where / "qs")],
                               cwd=where, env={**os.environ, **SINGLE_THREAD}, start_new_session=True)
    (where / "pid").write_text(str(process.pid))


def pytest_sessionfinish(session, exitstatus):
    """The controller (or a run without xdist) cleans up after every worker has finished."""
    if _is_worker(session.config):
        return
    import shutil
    import signal

    run = Path(os.environ.get("FERLAB_TEST_RUN", ""))
    pid = _quickstart_dir() / "pid"
    if pid.exists() and not (_quickstart_dir() / "rc").exists():  # the session stopped early (-x, Ctrl-C)
        try:
            os.killpg(int(pid.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    if run.name.startswith("ferlab-tests-"):
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="session")
def quickstart_study():
    """The README's main job run once through the CLI (local executor), started in the background when the tests
    were collected: (study dir, seconds it took, CompletedProcess)."""
    import subprocess
    import time

    where = _quickstart_dir()
    deadline = time.time() + 900
    while not (where / "rc").exists():
        assert time.time() < deadline, "the background quickstart study did not finish in 15 minutes"
        time.sleep(0.5)
    returncode = int((where / "rc").read_text())
    # Its end: the last write to its logs (the study may have finished long before this test asked).
    start = float((where / "start").read_text())
    seconds = max((where / name).stat().st_mtime for name in ("stdout.log", "stderr.log")) - start
    result = subprocess.CompletedProcess(QUICKSTART_COMMAND, returncode, (where / "stdout.log").read_text(),
                                         (where / "stderr.log").read_text())
    return where / "qs", seconds, result
