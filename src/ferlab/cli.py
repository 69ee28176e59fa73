"""The ``ferlab`` command line: a thin layer over the Python API (each command imports what it needs)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ferlab.errors import FerlabError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the real output

app = typer.Typer(help="Facial expression recognition: data, models, studies, reports, deployment.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Prepare and inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)  # progress and messages
# Tables go to stdout; when it is not a terminal (CI logs, pipes), Rich's 80-column default truncates them.
out_console = Console(width=None if sys.stdout.isatty() else 160)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    """A Rich progress bar; yields a ``(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# ------------------------------------------------------------------------------------------------- data
@data_app.command("prepare")
def data_prepare(
    source: Annotated[str, typer.Option(help="Image folder, fer2013.csv / icml_face_data.csv, or 'synthetic'.")] = "synthetic",
    protocol: Annotated[str, typer.Option(help="fer7, paper5, ferplus8, or a protocol .toml file.")] = "paper5",
    split: Annotated[str, typer.Option(help="paper (balanced per class), official (source's own), or stratified.")] = "paper",
    train_per_class: Annotated[int, typer.Option(help="paper split: training images per class.")] = 1500,
    test_per_class: Annotated[int, typer.Option(help="paper split: test images per class.")] = 1000,
    val_fraction: Annotated[float, typer.Option(help="Validation share (of the training part; paper split: of train_per_class, drawn besides it).")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="stratified split: test share.")] = 0.2,
    test_part: Annotated[str, typer.Option(help="official split on FER2013: both, public or private test images.")] = "both",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    allow_leaks: Annotated[bool, typer.Option("--allow-leaks", help="Naive per-image sampling: keep duplicates, blank images and conflicting labels.")] = False,
    near_dup_threshold: Annotated[Optional[int], typer.Option(help="Also group near duplicates: max pHash Hamming distance (0-16).")] = None,
    labels: Annotated[str, typer.Option(help="original, or ferplus (majority vote of FER+; needs --ferplus).")] = "original",
    ferplus: Annotated[Optional[Path], typer.Option(help="fer2013new.csv (CSV source) or fer2013_jpg_to_ferplus.csv (folder source).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable image files and list them instead of failing.")] = False,
    synthetic_per_class: Annotated[Optional[int], typer.Option(help="synthetic source: images per original class.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default prepared/<source>-<protocol>-<split>-seed<seed>).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output directory.")] = False,
) -> None:
    """Load a source, apply a protocol and a leak-free split, and write images.npy + manifest.csv + data.json."""
    from pydantic import ValidationError

    from ferlab.data.prepare import PrepareConfig, load_faces, prepare
    from ferlab.data.protocols import get_protocol
    from ferlab.data.splits import SplitConfig

    try:
        cfg = PrepareConfig(
            source=source, protocol=protocol, labels=labels, ferplus=str(ferplus) if ferplus else None,
            skip_bad=skip_bad, synthetic_per_class=synthetic_per_class,
            split=SplitConfig(kind=split, train_per_class=train_per_class, test_per_class=test_per_class,
                              val_fraction=val_fraction, test_fraction=test_fraction, test_part=test_part,
                              seed=seed, allow_leaks=allow_leaks, near_duplicate_threshold=near_dup_threshold),
        )
    except ValidationError as exc:
        raise FerlabError(_validation_message(exc)) from None
    get_protocol(protocol)  # fail before the (possibly slow) load
    if out is None:
        stem = Path(source).stem if source != "synthetic" else "synthetic"
        out = Path("prepared") / f"{stem}-{protocol}-{split}-seed{seed}{'-leaky' if allow_leaks else ''}"
    with progress_bar(f"loading {source}") as progress:
        faces = load_faces(cfg, progress)
    data = prepare(cfg, out, overwrite=overwrite, faces=faces)
    if faces.notes.get("skipped"):
        console.print(f"skipped {len(faces.notes['skipped'])} unreadable file(s): " + ", ".join(faces.notes["skipped"][:20]))
    _print_prepared(data)
    console.print(f"wrote {out}")


@data_app.command("info")
def data_info(
    target: Annotated[str, typer.Argument(help="A prepared data directory, an image folder, a CSV, or 'synthetic'.")] = "synthetic",
    montage: Annotated[Optional[Path], typer.Option(help="Where to write the montage PNG (default: DIR/montage.png for a prepared set, montage-<name>.png otherwise).")] = None,
) -> None:
    """Counts per split and class, duplicate and leak statistics, and a montage of samples per class."""
    from ferlab.data.info import source_summary, write_montage

    path = Path(target)
    if (path / "data.json").is_file():
        from ferlab.data.prepare import PreparedData

        data = PreparedData(path)
        _print_prepared(data)
        _print_duplicates(data.meta["source_duplicates"])
        out = write_montage(data.images, list(data.manifest["label"]), list(data.classes), montage or path / "montage.png")
    else:
        from ferlab.data.sources import load_source

        with progress_bar(f"loading {target}") as progress:
            faces = load_source(target, progress=progress)
        summary = source_summary(faces)
        _print_counts(summary["counts"], f"{summary['name']}: {summary['images']} images")
        _print_duplicates(summary["duplicates"])
        name = "synthetic" if target == "synthetic" else path.name
        out = write_montage(faces.images, list(faces.provenance["origin_label"]),
                            sorted(set(faces.provenance["origin_label"]) - {""}), montage or Path(f"montage-{name}.png"))
    console.print(f"montage: {out}")


# ------------------------------------------------------------------------------------------ train/study
@app.command("train")
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
    _print_run(metrics, out)


@app.command("evaluate")
def evaluate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (holds model.keras).")],
    data: Annotated[Path, typer.Option(help="A prepared data directory to evaluate on.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, or flip (average with the mirror image).")] = "none",
) -> None:
    """Evaluate a trained run on another prepared data set (saved under RUN_DIR/evaluations/)."""
    from ferlab.evaluate.cross import evaluate_run

    result = evaluate_run(run_dir, data, split, tta=tta)
    lo, hi = result["accuracy_ci95"]
    out_console.print(f"{run_dir} on {result['data']['source']} ({split}): accuracy {result['accuracy']:.4f} "
                    f"[95% CI {lo:.4f}-{hi:.4f}], macro F1 {result['macro_f1']:.4f}, loss {result['loss']:.4f}")


@app.command("study")
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
    _print_results(table, out)
    if report:
        from ferlab.report import write_report

        paths = write_report(out)
        console.print(f"report: {paths['html']}")


@app.command("report")
def report_cmd(study_dir: Annotated[Path, typer.Argument(help="A study directory (holds results.csv).")]) -> None:
    """Write STUDY_DIR/report/: report.md, report.html (self-contained) and the CSV tables."""
    from ferlab.report import write_report

    paths = write_report(study_dir)
    console.print(f"report: {paths['html']}")


@contextlib.contextmanager
def epoch_bar(description: str, epochs: int) -> Iterator:
    with progress_bar(description) as progress:
        yield lambda row: progress(row["epoch"], epochs)


def _print_run(metrics: dict, out: Path) -> None:
    if metrics["status"] != "ok":
        raise FerlabError(f"{out}: training failed: {metrics['reason']}")
    t = metrics["test"]
    lo, hi = t["accuracy_ci95"]
    out_console.print(f"{out}: test accuracy {t['accuracy']:.4f} [95% CI {lo:.4f}-{hi:.4f}], macro F1 {t['macro_f1']:.4f}, "
                    f"train accuracy {metrics['train']['accuracy']:.4f}, best epoch {metrics['best_epoch']}")


def _print_results(table, out: Path) -> None:
    from rich.table import Table

    view = Table(title=f"{out}/results.csv")
    for col in ("trial_id", "status", "train_accuracy", "val_accuracy", "test_accuracy", "macro_f1"):
        view.add_column(col, justify="left" if col in ("trial_id", "status") else "right")
    for row in table.itertuples():
        fmt = lambda v: "" if v is None or v != v else f"{v:.4f}"  # noqa: E731
        view.add_row(row.trial_id, row.status if row.status == "ok" else f"failed: {row.reason}"[:60],
                     fmt(row.train_accuracy), fmt(row.val_accuracy), fmt(row.test_accuracy), fmt(row.macro_f1))
    out_console.print(view)


def _print_counts(counts: dict[str, dict[str, int]], title: str) -> None:
    from rich.table import Table

    classes = sorted({c for row in counts.values() for c in row})
    table = Table(title=title)
    table.add_column("split")
    for c in classes:
        table.add_column(c, justify="right")
    table.add_column("total", justify="right")
    for split, row in counts.items():
        table.add_row(split or "(none)", *[str(row.get(c, 0)) for c in classes], str(sum(row.values())))
    out_console.print(table)


def _print_prepared(data) -> None:
    meta = data.meta
    split = meta["config"]["split"]
    title = (f"{data.path}: {meta['source']['name']}, protocol {meta['protocol']['name']}, split {split['kind']}, "
             f"seed {split['seed']}, {'LEAKY' if split['allow_leaks'] else 'leak-free'}, fingerprint {meta['fingerprint']}")
    _print_counts(meta["counts"], title)
    dropped = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in meta["dropped"].items())
    out_console.print(f"dropped before splitting -- {dropped}")


def _print_duplicates(stats: dict) -> None:
    from rich.table import Table

    table = Table(title="exact duplicates (identical pixels)")
    for col in ("part", "images", "distinct", "dup. groups", "in groups", "redundant", "conflicting groups"):
        table.add_column(col, justify="right" if col != "part" else "left")
    for part in ("within_train", "within_val", "within_test", "overall"):
        if part in stats:
            s = stats[part]
            table.add_row(part.replace("_", " "), *[str(s[k]) for k in ("images", "distinct", "duplicate_groups",
                          "images_in_duplicate_groups", "redundant_copies", "conflicting_label_groups")])
    out_console.print(table)
    if "across_train_test" in stats:
        a = stats["across_train_test"]
        out_console.print(
            f"across train/test: {a['distinct_images_in_both']} distinct images in both; "
            f"{a['test_images_with_train_copy']} test images have a copy in train "
            f"({a['train_images_involved']} train images involved; {a['test_images_with_same_label_train_copy']} with a same-label copy)"
        )
    out_console.print(f"blank (single-value) images: {stats['blank_images']}")


_OPTION_OF_FIELD = {"kind": "split", "near_duplicate_threshold": "near-dup-threshold"}


def _validation_message(exc) -> str:
    """A pydantic error as one line naming the command-line option."""
    err = exc.errors()[0]
    field = str(err["loc"][-1]) if err["loc"] else "config"
    option = _OPTION_OF_FIELD.get(field, field.replace("_", "-"))
    return f"--{option}: {err['msg']}"


# Deployment commands live beside their code (ferlab/deploy/cli_*.py), each with a register(app).
from ferlab.deploy import cli_export, cli_live, cli_predict, cli_serve  # noqa: E402

for _commands in (cli_export, cli_predict, cli_live, cli_serve):
    _commands.register(app)


def main() -> None:
    """Entry point: user errors print one line and exit 2, without a traceback."""
    try:
        app()
    except FerlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
