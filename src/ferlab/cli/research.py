"""``ferlab train``, ``evaluate``, ``study`` and ``report``: the research half."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from ferlab.cli.common import console, out_console, positive, progress_bar
from ferlab.cli.show import print_results, print_run
from ferlab.evaluate.tta import TTA_CHOICES
from ferlab.study.executors import EXECUTORS, MAX_RETRIES, executor_class

if TYPE_CHECKING:
    from ferlab.study.status import StatusSnapshot


def register(app: typer.Typer) -> None:
    """Add the research commands to the top-level app."""
    for name, command in (("train", train_cmd), ("evaluate", evaluate_cmd), ("study", study_cmd),
                          ("report", report_cmd)):
        app.command(name)(command)


def train_cmd(
    config: Annotated[Path, typer.Option(help="Run config TOML: data, [model], [train], optional preset.")],
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default runs/<backbone>-<pooling>-<mode>-s<seed>).")] = None,
) -> None:
    """Train and evaluate one model; resumes an interrupted run in the same directory."""
    from ferlab.config import read_toml
    from ferlab.train.config import resolve_run_config
    from ferlab.train.run import train_run

    cfg = resolve_run_config(read_toml(config), str(config))
    m = cfg.model
    out = out or Path("runs") / f"{m.backbone}-{m.pooling}-{m.mode}-s{cfg.train.seed}"
    try:
        with epoch_bar(f"training {m.backbone}/{m.pooling}", cfg.train.epochs) as on_epoch:
            metrics = train_run(cfg, out, on_epoch=on_epoch)
    except KeyboardInterrupt:
        interrupted()
    print_run(metrics, out)


def evaluate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (holds model.keras).")],
    data: Annotated[Path, typer.Option(help="A prepared data directory to evaluate on.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    tta: Annotated[str, typer.Option(help=f"Test-time augmentation: {', '.join(TTA_CHOICES)} (flip: average with the mirror image).")] = "none",
) -> None:
    """Evaluate a trained run on another prepared data set (saved under RUN_DIR/evaluations/)."""
    from ferlab.train.cross import evaluate_run

    result = evaluate_run(run_dir, data, split, tta=tta)
    lo, hi = result["accuracy_ci95"]
    out_console.print(f"{run_dir} on {result['data']['source']} ({split}): accuracy {result['accuracy']:.4f} "
                    f"[95% CI {lo:.4f}-{hi:.4f}], macro F1 {result['macro_f1']:.4f}, loss {result['loss']:.4f}")


def study_cmd(
    spec: Annotated[str, typer.Option(help="quickstart, paper, paper-cpu, pooling-finetune, pooling-finetune-naive, or a spec .toml file.")] = "quickstart",
    out: Annotated[Optional[Path], typer.Option(help="Study directory (default studies/<name>).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Use this prepared data directory instead of the spec's [data].")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed trials again.")] = False,
    only: Annotated[Optional[str], typer.Option(help="Run only trials whose id matches these comma-separated patterns, e.g. '*-avg-*'.")] = None,
    report: Annotated[bool, typer.Option(help="Write the report when the study is done.")] = True,
    executor: Annotated[str, typer.Option(help=f"Where trials run: {'; '.join(f'{k}: {v.summary}' for k, v in EXECUTORS.items())}.")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster: auto (the one this machine joined), HOST:PORT of its head, or ray://HOST:10001; default: start Ray on this machine.")] = None,
    cpus_per_trial: Annotated[Optional[float], typer.Option(help="CPUs per trial (Ray); default the spec's [resources] cpus, else 1.")] = None,
    gpus_per_trial: Annotated[Optional[float], typer.Option(help="GPUs per trial (Ray; fractions share a GPU); default the spec's, else 0.")] = None,
    memory_per_trial: Annotated[Optional[float], typer.Option(help="Memory per trial in GB (Ray schedules by it); default the spec's, else none.")] = None,
    max_retries: Annotated[int, typer.Option(help="Ray: times a trial whose worker died is retried (it resumes from its last epoch).")] = MAX_RETRIES,
    precision: Annotated[str, typer.Option(help="float32, or mixed (Keras mixed_float16: for GPUs; slower on CPUs).")] = "float32",
    track: Annotated[Optional[str], typer.Option(help="Log each trial to MLflow: mlflow (./mlruns) or mlflow:URI (pip install 'ferlab[mlflow]').")] = None,
) -> None:
    """Run (or resume) a backbone x pooling x seed x size x mode study; write results.csv and the report."""
    from ferlab.errors import FerlabError
    from ferlab.study.runner import run_study
    from ferlab.study.spec import load_spec

    study = load_spec(spec)
    if precision not in ("float32", "mixed"):
        raise FerlabError(f"--precision {precision}: choose float32 or mixed")
    if precision == "mixed":
        study = study.model_copy(update={"train": {**study.train, "mixed_precision": True}})
    for option, value, minimum in (("--cpus-per-trial", cpus_per_trial, 0.01), ("--gpus-per-trial", gpus_per_trial, 0),
                                   ("--memory-per-trial", memory_per_trial, 0.01), ("--max-retries", max_retries, 0)):
        positive(option, value, minimum)
    wanted = {"cpus": cpus_per_trial, "gpus": gpus_per_trial, "memory_gb": memory_per_trial}
    study = study.model_copy(update={"resources": study.resources.model_copy(
        update={k: v for k, v in wanted.items() if v is not None})})
    # The executor takes the options it has (Ray: --address, --max-retries); the others mean nothing to it.
    runner = executor_class(executor).from_options(address=address, max_retries=max_retries)
    out = out or Path("studies") / study.name
    try:
        with StudyProgress() as progress:
            table = run_study(study, out, data_dir=data, retry_failed=retry_failed, only=only, executor=runner,
                              track=track, on_status=progress.update)
    except KeyboardInterrupt:
        interrupted()
    print_results(table, out)
    if report:
        from ferlab.report import write_report

        paths = write_report(out)
        console.print(f"report: {paths['html']}")


class StudyProgress:
    """Live study progress on stderr: trials done/running/failed, and each running trial's epochs."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        self.total = self.bar.add_task("", total=None)  # its description: the counts, set by update()
        self.running: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def update(self, status: StatusSnapshot) -> None:
        c = status.counts
        self.bar.update(self.total, completed=c["done"] + c["failed"], total=len(status.trials),
                        description=f"trials: {c['done']} done, {c['running']} running, {c['failed']} failed, "
                                    f"{c['pending']} pending")
        now = status.running()
        for trial_id in set(self.running) - set(now):
            self.bar.remove_task(self.running.pop(trial_id))
        for trial_id, t in now.items():
            where = f" on {t['host']}" if status.executor != "local" and t.get("host") else ""
            retry = f" (attempt {t['attempt']})" if t.get("attempt", 1) > 1 else ""
            text = f"  {trial_id}{where}{retry}: epoch"
            if trial_id not in self.running:
                self.running[trial_id] = self.bar.add_task(text, total=t["epochs"])
            self.bar.update(self.running[trial_id], completed=t["epoch"], description=text)


def report_cmd(
    study_dir: Annotated[Path, typer.Argument(help="A study directory (holds results.csv).")],
    compare: Annotated[Optional[Path], typer.Option(help="Another study directory: compare the configurations both ran.")] = None,
) -> None:
    """Write STUDY_DIR/report/: report.md, report.html (self-contained) and the CSV tables."""
    from ferlab.report import write_report

    paths = write_report(study_dir, compare=compare)
    console.print(f"report: {paths['html']}")


def invoked_command() -> str:
    """This command line as the user can type it again (``ferlab ...``, however it was started)."""
    return shlex.join(["ferlab", *sys.argv[1:]])


def interrupted() -> NoReturn:
    """Ctrl-C in a resumable command: one line with the command that resumes it, exit code 130 (128 + SIGINT).
    Printed after the progress bar is gone, so the line stands alone."""
    print(f"interrupted; rerun the same command to resume: {invoked_command()}", file=sys.stderr)
    raise typer.Exit(130)


@contextlib.contextmanager
def epoch_bar(description: str, epochs: int) -> Iterator:
    with progress_bar(description) as progress:
        yield lambda row: progress(row["epoch"], epochs)
