"""``ferlab train``, ``evaluate``, ``study`` and ``report``: the research half."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferlab.cli.common import console, out_console, progress_bar
from ferlab.cli.show import print_results, print_run
from ferlab.evaluate.tta import TTA_CHOICES


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
    with epoch_bar(f"training {m.backbone}/{m.pooling}", cfg.train.epochs) as on_epoch:
        metrics = train_run(cfg, out, on_epoch=on_epoch)
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
    spec: Annotated[str, typer.Option(help="quickstart, paper, paper-cpu, or a spec .toml file.")] = "quickstart",
    out: Annotated[Optional[Path], typer.Option(help="Study directory (default studies/<name>).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Use this prepared data directory instead of the spec's [data].")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed trials again.")] = False,
    only: Annotated[Optional[str], typer.Option(help="Run only trials whose id matches these comma-separated patterns, e.g. '*-avg-*'.")] = None,
    report: Annotated[bool, typer.Option(help="Write the report when the study is done.")] = True,
) -> None:
    """Run (or resume) a backbone x pooling x seed x size x mode study; write results.csv and the report."""
    from ferlab.study.runner import run_study
    from ferlab.study.spec import load_spec

    study = load_spec(spec)
    out = out or Path("studies") / study.name
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        trials_task = bar.add_task("trials", total=None)
        epoch_task = bar.add_task("epochs", total=None)

        def on_trial(trial, i, n):
            bar.update(trials_task, completed=i, total=n, description=f"trial {trial.trial_id}")
            bar.update(epoch_task, completed=0, total=trial.config.train.epochs)

        def on_epoch(row):
            bar.update(epoch_task, completed=row["epoch"],
                       description=f"epoch {row['epoch']}: val acc {row['val_accuracy']:.3f}")

        table = run_study(study, out, data_dir=data, retry_failed=retry_failed, only=only, on_trial=on_trial,
                          on_epoch=on_epoch)
    print_results(table, out)
    if report:
        from ferlab.report import write_report

        paths = write_report(out)
        console.print(f"report: {paths['html']}")


def report_cmd(study_dir: Annotated[Path, typer.Argument(help="A study directory (holds results.csv).")]) -> None:
    """Write STUDY_DIR/report/: report.md, report.html (self-contained) and the CSV tables."""
    from ferlab.report import write_report

    paths = write_report(study_dir)
    console.print(f"report: {paths['html']}")


@contextlib.contextmanager
def epoch_bar(description: str, epochs: int) -> Iterator:
    with progress_bar(description) as progress:
        yield lambda row: progress(row["epoch"], epochs)
