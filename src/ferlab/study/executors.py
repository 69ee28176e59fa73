"""Where a study's trials run: in this process (``local``, the default) or as tasks on a Ray cluster (``ray``).

Both executors run the same :func:`run_trial` and share one contract: a worker writes only its own trial
directory; the driver alone writes the study's tables (results.csv, status.json) and tracking, rebuilt
from the trial directories, so no executor, retry or rerun can duplicate or corrupt a row.

Ray tasks, not Ray Tune trials: the grid is fixed (no search, no early stopping across trials), the
trial's own epoch checkpoints already make a retried task resume where it was killed, and the results
table is ferlab's, so Tune would add a second checkpoint and result format and its own start-up per
trial for nothing used. A task killed with its worker (SIGKILL, node lost, out of memory) is retried
by Ray (``max_retries``); the retry takes the trial's lock, so it starts only when the killed
process is gone, and resumes from the last epoch checkpoint.

Executors are one registry, :data:`EXECUTORS` (``ferlab study --executor``'s choices and help read it).
An executor is an :class:`Executor` subclass registered with :func:`register_executor`: its ``name`` and
``summary``, its own options as an :class:`ExecutorOptions` model (Ray: the cluster's address and the
retries of a lost task; the local executor has none), and ``run`` calling :func:`run_trial` where it
likes. The command line builds the chosen one from its options (:meth:`Executor.from_options`), so the
study runner passes no executor's options along; what every trial asks of its worker (the spec's
``[resources]``) travels with the :class:`TrialJob`.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ferlab.errors import FerlabError, first_line
from ferlab.io import atomic_write_json, atomic_write_text, file_lock, read_json
from ferlab.registry import Registry
from ferlab.rundir import RunDir
from ferlab.studydir import StudyDir

if TYPE_CHECKING:  # the command line reads EXECUTORS; the spec module would load the training configs and more
    from ferlab.study.spec import Resources, Trial
    from ferlab.study.status import StudyStatus

MAX_RETRIES = 3  # times Ray runs a trial again whose worker died (it resumes from its last epoch)


@dataclass(frozen=True)
class TrialJob:
    """What every trial of one driver run shares (sent to each worker)."""

    out: str  # the study directory (on storage every worker mounts at the same path)
    data_path: str  # the prepared data (idem)
    use_feature_cache: bool = True
    session: str = ""  # this driver run: tells its workers' worker.json from those of earlier runs
    resources: Resources | None = None  # what each trial asks of its worker (the spec's [resources]); None: defaults


class ExecutorOptions(BaseModel):
    """An executor's own options; this base has none. Subclasses add fields named as the command line's
    options (``address`` for ``--address``), so :meth:`Executor.from_options` can pick them out."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Executor(ABC):
    """Where a study's trials run. A subclass sets ``name``, ``summary`` and ``Options``, implements ``run``,
    and is registered with :func:`register_executor`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for ``--executor``'s help
    Options: ClassVar[type[ExecutorOptions]] = ExecutorOptions

    def __init__(self, options: ExecutorOptions | None = None):
        self.options = options if options is not None else self.Options()

    @classmethod
    def from_options(cls, **given: object) -> Executor:
        """This executor with its options taken from ``given`` (the command line's): the ones it has, where
        set; the rest (``--address`` for the local executor) mean nothing to it and are left out."""
        fields = {k: v for k, v in given.items() if k in cls.Options.model_fields and v is not None}
        try:
            return cls(cls.Options(**fields))
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            raise FerlabError(f"--{name.replace('_', '-')} {fields.get(name)}: {error['msg'].lower()} "
                              f"(--executor {cls.name})") from None

    def preflight(self) -> None:
        """What can fail before the study directory is touched (a missing package, a dead address): one line now."""

    @abstractmethod
    def run(self, pending: list[Trial], job: TrialJob, status: StudyStatus,
            finished: Callable[[Trial, dict], None]) -> None:
        """Run the pending trials (each through :func:`run_trial`), keeping ``status`` current and handing
        each trial's metrics to ``finished`` as it ends; the driver writes the study's tables from there."""


EXECUTORS: Registry[type[Executor]] = Registry("executor", "--executor")


def register_executor(cls: type[Executor]) -> type[Executor]:
    """Register an executor class (a class decorator): ``ferlab study --executor NAME`` then offers it."""
    EXECUTORS.register(cls.name, cls)
    return cls


def executor_class(name: str) -> type[Executor]:
    """The executor class ``--executor NAME`` chooses; an unknown name is one error line listing the choices."""
    if name not in EXECUTORS:
        raise FerlabError(f"--executor {name}: unknown executor; choose one of {', '.join(EXECUTORS.names())}")
    return EXECUTORS.get(name)


_DATA: dict[str, object] = {}  # a worker's loaded data, kept for its next trial (Ray reuses CPU workers)


def _prepared(path: str):
    from ferlab.data.prepare import PreparedData

    if path not in _DATA:
        _DATA.clear()
        _DATA[path] = PreparedData(Path(path))
    return _DATA[path]


def run_trial(job: TrialJob, trial: Trial, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) one trial into its run directory in the study; return its metrics.json (ok or failed).

    A trial that raises (weights missing offline, a backbone too big for memory, a bug in one backbone)
    is recorded as failed with its traceback in error.txt, and the study goes on.
    """
    import ferlab.backend  # noqa: F401, I001  (TensorFlow imported quietly, before keras)
    import keras

    from ferlab.train.run import train_run

    study = StudyDir(job.out)
    run = study.trial(trial.trial_id)
    run.path.mkdir(parents=True, exist_ok=True)
    with file_lock(run.lock_file):  # an earlier attempt still dying (a killed worker) finishes first
        finished = run.finished()
        if finished is not None:  # an earlier attempt finished it after all
            return finished
        _write_worker(run, job.session)
        keras.backend.clear_session()
        info = {"trial_id": trial.trial_id}
        try:
            return train_run(trial.config, run.path, data=_prepared(job.data_path),
                             feature_cache=study.cache_dir, use_feature_cache=job.use_feature_cache,
                             trial=info, on_epoch=on_epoch)
        except Exception as exc:  # noqa: BLE001
            atomic_write_text(run.error_file, traceback.format_exc())
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            return run.record_failure(reason, {**info, **trial_fields(trial)})


def trial_fields(trial: Trial) -> dict:
    return {"backbone": trial.backbone, "pooling": trial.pooling, "mode": trial.mode,
            "input_size": trial.input_size, "seed": trial.seed, "preprocessing": trial.preprocessing}


def _write_worker(run: RunDir, session: str) -> dict:
    attempt = 1
    if run.worker_file.is_file():
        try:
            old = read_json(run.worker_file, "worker.json")
            if isinstance(old, dict) and old.get("session") == session:
                attempt = int(old.get("attempt", 1)) + 1
        except (FerlabError, ValueError, TypeError):
            pass
    worker = {"host": socket.gethostname(), "pid": os.getpid(), "session": session, "attempt": attempt,
              "started": time.time()}
    atomic_write_json(run.worker_file, worker)
    return worker


@register_executor
class LocalExecutor(Executor):
    """Every trial in this process, one after the other (no Ray needed; no options)."""

    name = "local"
    summary = "one trial after another in this process"

    def run(self, pending: list[Trial], job: TrialJob, status: StudyStatus,
            finished: Callable[[Trial, dict], None]) -> None:
        for trial in pending:
            status.started(trial.trial_id, {"host": socket.gethostname(), "pid": os.getpid()})
            status.write()

            def on_epoch(row: dict, trial_id: str = trial.trial_id) -> None:
                status.epoch(trial_id, row["epoch"])
                status.write()

            finished(trial, run_trial(job, trial, on_epoch))


class RayOptions(ExecutorOptions):
    """``address``: None starts a Ray instance on this machine for the study; ``"auto"`` joins the cluster
    this machine is part of (``ray start``); ``"HOST:PORT"`` a cluster's head; ``"ray://HOST:10001"`` a
    remote cluster through Ray Client. ``max_retries``: times a trial whose worker died runs again."""

    address: str | None = None
    max_retries: int = Field(MAX_RETRIES, ge=0)


@register_executor
class RayExecutor(Executor):
    """Each trial a Ray task asking for the job's resources (the spec's, or the command line's); see the
    module docstring. Every node must mount the study and data directories at the same paths and have
    ferlab installed."""

    name = "ray"
    summary = "each trial a Ray task, here or on a cluster (pip install 'ferlab[ray]')"
    Options = RayOptions
    options: RayOptions
    poll_seconds = 0.5

    def preflight(self) -> None:
        """Ray installed and the address answering, before the study directory is touched."""
        _import_ray()
        _check_reachable(self.options.address)

    def run(self, pending: list[Trial], job: TrialJob, status: StudyStatus,
            finished: Callable[[Trial, dict], None]) -> None:
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            _init_ray(ray, self.options.address)
        try:
            self._run(ray, pending, job, status, finished)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, pending, job, status, finished) -> None:
        res = job.resources if job.resources is not None else _default_resources()
        retries = self.options.max_retries
        options = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_retries": retries, "retry_exceptions": False}
        if res.memory_gb:
            options["memory"] = int(res.memory_gb * 2**30)
        # A fresh process per GPU trial: TF binds its GPUs (CUDA_VISIBLE_DEVICES) and holds their memory
        # for the life of the process. CPU workers are reused: TensorFlow and the data stay loaded.
        remote = ray.remote(max_calls=1 if res.gpus else 0)(_ray_trial)
        refs = {remote.options(name=f"ferlab-{t.trial_id}", **options).remote(job, t): t for t in pending}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=self.poll_seconds, fetch_local=True)
            for ref in ready:
                trial = refs.pop(ref)
                try:
                    metrics = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task's workers died max_retries + 1 times
                    metrics = _record_lost(job, trial, exc, retries)
                finished(trial, metrics)
            status.poll()
            status.write()


def _default_resources() -> Resources:
    from ferlab.study.spec import Resources

    return Resources()


def _ray_trial(job: TrialJob, trial: Trial) -> dict:
    """The Ray task: run_trial with TensorFlow's threads sized to the CPUs Ray gave the task."""
    import sys

    if "tensorflow" not in sys.modules:  # thread pools are fixed when TensorFlow starts in this worker
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            threads = str(max(1, int(round(cpus))))
            os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
            os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)
    return run_trial(job, trial)


def _record_lost(job: TrialJob, trial: Trial, exc: Exception, retries: int) -> dict:
    run = StudyDir(job.out).trial(trial.trial_id)
    with file_lock(run.lock_file):
        finished = run.finished()
        if finished is not None:
            return finished
        atomic_write_text(run.error_file, f"{type(exc).__name__}: {exc}\n")
        reason = f"worker lost {retries + 1} times ({type(exc).__name__}); rerun with --retry-failed"
        return run.record_failure(reason, {"trial_id": trial.trial_id, **trial_fields(trial)})


def _import_ray():
    try:
        import ray
    except ImportError:
        raise FerlabError("--executor ray needs Ray; install it with: pip install 'ferlab[ray]'") from None
    return ray


def _init_ray(ray, address: str | None) -> None:
    import logging

    kwargs = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FerlabError(f"--address {address}: cannot join a Ray cluster there ({first_line(exc)}); start one with "
                          f"`ray start --head` or leave --address out to run Ray on this machine") from None


def _check_reachable(address: str | None) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on: one line now. Ray itself keeps retrying a
    wrong address for minutes (measured: still waiting after 10 minutes for 127.0.0.1:1)."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise FerlabError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise FerlabError(f"--address {address}: nothing answers there ({exc.strerror or exc}); start the cluster's "
                          f"head with `ray start --head`, or leave --address out to run Ray on this machine") from None

