"""Printing results: the tables and summary lines commands show (results on stdout, notes on stderr)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ferlab.cli.common import out_console
from ferlab.errors import FerlabError
from ferlab.studydir import StudyDir

MAX_SUMMARY_ROWS = 40


def print_run(metrics: dict, out: Path) -> None:
    if metrics["status"] != "ok":
        raise FerlabError(f"{out}: training failed: {metrics['reason']}")
    t = metrics["test"]
    lo, hi = t["accuracy_ci95"]
    out_console.print(f"{out}: test accuracy {t['accuracy']:.4f} [95% CI {lo:.4f}-{hi:.4f}], macro F1 {t['macro_f1']:.4f}, "
                    f"train accuracy {metrics['train']['accuracy']:.4f}, best epoch {metrics['best_epoch']}")


def print_results(table, out: Path) -> None:
    view = Table(title=str(StudyDir(out).results_csv))
    for col in ("trial_id", "status", "train_accuracy", "val_accuracy", "test_accuracy", "macro_f1"):
        view.add_column(col, justify="left" if col in ("trial_id", "status") else "right")
    for row in table.itertuples():
        fmt = lambda v: "" if v is None or v != v else f"{v:.4f}"  # noqa: E731
        view.add_row(row.trial_id, row.status if row.status == "ok" else f"failed: {row.reason}"[:60],
                     fmt(row.train_accuracy), fmt(row.val_accuracy), fmt(row.test_accuracy), fmt(row.macro_f1))
    out_console.print(view)


def print_source_counts(counts: dict[str, dict[str, int]], title: str) -> None:
    classes = sorted({c for row in counts.values() for c in row})
    table = Table(title=title)
    table.add_column("split")
    for c in classes:
        table.add_column(c, justify="right")
    table.add_column("total", justify="right")
    for split, row in counts.items():
        table.add_row(split or "(none)", *[str(row.get(c, 0)) for c in classes], str(sum(row.values())))
    out_console.print(table)


def print_prepared(data) -> None:
    meta = data.meta
    split = meta["config"]["split"]
    title = (f"{data.path}: {meta['source']['name']}, protocol {meta['protocol']['name']}, split {split['kind']}, "
             f"seed {split['seed']}, {'LEAKY' if split['allow_leaks'] else 'leak-free'}, fingerprint {meta['fingerprint']}")
    print_source_counts(meta["counts"], title)
    dropped = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in meta["dropped"].items())
    out_console.print(f"dropped before splitting -- {dropped}")


def print_duplicates(stats: dict) -> None:
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


def print_export_report(r: dict) -> None:
    mark = "[green]passed[/green]" if r["passed"] else "[red]FAILED[/red]"
    table = Table(title=f"{r['file']}: {r['format']} {r['quantize']} vs Keras on {r['n_images']} test faces: {mark}")
    for col in ("top-1 agreement", "bound", "max |Δp|", "accuracy (export / Keras)", "size (export / Keras)",
                "latency 1 face (export / Keras)"):
        table.add_column(col, justify="right")
    table.add_row(f"{r['top1_agreement']:.2%}", f"{r['bound']:.1%}", f"{r['max_abs_diff']:.3g}",
                  f"{r['exported_accuracy']:.2%} / {r['keras_accuracy']:.2%}",
                  f"{r['file_size_bytes'] / 1e6:.2f} MB / {r['keras_file_size_bytes'] / 1e6:.2f} MB",
                  f"{r['latency_ms']:.2f} ms / {r['keras_latency_ms']:.2f} ms")
    out_console.print(table)


def print_predict_summary(target, summary, classes: list[str], failed: int = 0) -> None:
    images = summary[summary["frames"] == 1]
    no_face_images = int((images["faces"] == 0).sum())
    title = (f"{len(summary)} file(s), {int(summary['frames'].sum())} frame(s)/image(s), {int(summary['faces'].sum())} "
             f"face(s); {int(summary['frames_without_face'].sum())} frame(s)/image(s) without a face"
             f"{f' ({no_face_images} image(s))' if no_face_images else ''}"
             f"{f'; {failed} file(s) failed and were skipped' if failed else ''}")
    target.print(title, markup=False)
    # The class columns count labels (the share of a file's faces given each one), not mean probabilities.
    table = Table(caption="emotion columns: the share of the file's faces labelled with it (not a probability)")
    table.add_column("file", overflow="fold")
    for col in ("frames", "no face", "faces"):
        table.add_column(col, justify="right")
    for c in classes:
        table.add_column(f"{c}\n% faces", justify="right")
    table.add_column("most frequent")
    for row in summary.head(MAX_SUMMARY_ROWS).to_dict("records"):
        shares = [f"{row[f'share_{c}']:.0%}" if row["faces"] else "" for c in classes]
        table.add_row(escape(str(row["file"])), str(row["frames"]), str(row["frames_without_face"]), str(row["faces"]),
                      *shares, row["most_frequent"] or "-")
    if len(summary) > MAX_SUMMARY_ROWS:
        table.add_row(f"... {len(summary) - MAX_SUMMARY_ROWS} more file(s)", *[""] * (4 + len(classes)))
    target.print(table)


def print_timeline_summary(target, summary, several: bool = False) -> None:
    """Per tracked face (of each video, or a live run): seconds seen, each label's share of that time, the
    dominant label; the longest-seen MAX_SUMMARY_ROWS when there are more."""
    labels = [c[len("share_"):] for c in summary.columns if c.startswith("share_")]
    table = Table(title="tracked faces over time", caption="emotion columns: the share of the time the face was "
                  "seen with that label; a tie names each")
    if several:
        table.add_column("video", overflow="fold")
    for col in ("track", "seen s", "from s", "to s"):
        table.add_column(col, justify="right")
    for c in labels:
        table.add_column(f"{c}\n% time", justify="right")
    table.add_column("dominant")
    shown = summary.sort_values("seen_s", ascending=False, kind="stable").head(MAX_SUMMARY_ROWS).sort_index()
    for row in shown.to_dict("records"):
        table.add_row(*([escape(str(row["source"]))] if several else []), str(row["track"]), f"{row['seen_s']:.1f}",
                      f"{row['first_s']:.1f}", f"{row['last_s']:.1f}", *[f"{row[f'share_{c}']:.0%}" for c in labels],
                      row["dominant"] or "-")
    if len(summary) > len(shown):
        table.add_row(f"... {len(summary) - len(shown)} more track(s), each seen for less time",
                      *[""] * (len(table.columns) - 1))
    target.print(table)


def print_live_stats(s: dict) -> None:
    detected = f" on {s['detected_frames']} frames" if "detected_frames" in s else ""
    title = (f"{s['source']}: {s['frames']} frames in {s['seconds']:.1f} s = {s['fps']:.1f} fps "
             f"({s['backend']} classifier, {s['detector']} detector"
             f"{detected}, {s['tracks']} track(s)"
             f"{', interrupted' if s['interrupted'] else ''})")
    out_console.print(title)
    table = Table()
    table.add_column("stage")
    table.add_column("mean ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for stage, v in s["stages"].items():
        table.add_row(stage, f"{v['mean_ms']:.2f}", f"{v['p95_ms']:.2f}")
    out_console.print(table)
