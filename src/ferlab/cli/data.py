"""``ferlab data prepare`` and ``ferlab data info``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferlab.cli.common import console, progress_bar, validation_message
from ferlab.cli.show import print_duplicates, print_prepared, print_source_counts
from ferlab.data.source_kinds import sources_help
from ferlab.errors import FerlabError

app = typer.Typer(help="Prepare and inspect data sets.", no_args_is_help=True, rich_markup_mode=None)
OPTION_OF_FIELD = {"kind": "split", "near_duplicate_threshold": "near-dup-threshold"}


@app.command("prepare")
def data_prepare(
    source: Annotated[str, typer.Option(help=f"The faces: {sources_help()}.")] = "synthetic",
    protocol: Annotated[str, typer.Option(help="fer7, paper5, ferplus8, or a protocol .toml file.")] = "paper5",
    split: Annotated[str, typer.Option(help="paper (balanced per class), official (source's own), stratified, or test (every image to test: an evaluation-only set for 'ferlab evaluate RUN --data DIR').")] = "paper",
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
    """Load a source, apply a protocol and a leak-free split, and write a prepared data set (images, manifest,
    metadata)."""
    from pydantic import ValidationError

    from ferlab.data.prepare import PrepareConfig, check_out, load_faces, prepare
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
        raise FerlabError(validation_message(exc, OPTION_OF_FIELD)) from None
    get_protocol(protocol)  # fail before the (possibly slow) load
    if out is None:
        stem = Path(source).stem if source != "synthetic" else "synthetic"
        out = Path("prepared") / f"{stem}-{protocol}-{split}-seed{seed}{'-leaky' if allow_leaks else ''}"
    check_out(out, overwrite)  # before the load, which takes minutes for FER2013
    with progress_bar(f"loading {source}") as progress:
        faces = load_faces(cfg, progress)
    data = prepare(cfg, out, overwrite=overwrite, faces=faces)
    if faces.notes.get("skipped"):
        console.print(f"skipped {len(faces.notes['skipped'])} unreadable file(s): " + ", ".join(faces.notes["skipped"][:20]))
    print_prepared(data)
    print_warnings(data.meta)
    console.print(f"wrote {out}")


def print_warnings(meta: dict) -> None:
    # Plain print, like errors: one unwrapped line each, and no Rich markup read into class names.
    for warning in meta.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


@app.command("info")
def data_info(
    target: Annotated[str, typer.Argument(help="A prepared data directory, an image folder, a CSV, or 'synthetic'.")] = "synthetic",
    montage: Annotated[Optional[Path], typer.Option(help="Write a PNG of samples per class here (a new file). Default: a prepared data set gets DIR/montage.png (ferlab's own folder, rewritten each time); a raw source gets none, so nothing lands in the current directory or in your source.")] = None,
) -> None:
    """Counts per split and class, duplicate and leak statistics, and a montage of samples per class.

    The montage goes beside a prepared data set (DIR/montage.png), or where --montage says; for a raw
    source (an image folder, a CSV, 'synthetic') it is written only with --montage PATH.
    """
    from ferlab.data.info import source_summary, write_montage
    from ferlab.data.prepare import is_prepared

    path = Path(target)
    prepared = is_prepared(path)
    if montage is not None and montage.exists() and not (prepared and montage.resolve() == (path / "montage.png").resolve()):
        raise FerlabError(f"--montage {montage}: already exists; give a new file name (nothing is overwritten)")
    if montage is not None and not montage.parent.is_dir():
        raise FerlabError(f"--montage {montage}: folder {montage.parent} not found; create it or give another path")
    if prepared:
        from ferlab.data.prepare import PreparedData

        data = PreparedData(path)
        print_prepared(data)
        print_duplicates(data.meta["source_duplicates"])
        print_warnings(data.meta)
        out = write_montage(data.images, list(data.manifest["label"]), list(data.classes), montage or path / "montage.png")
    else:
        from ferlab.data.source_kinds import load_source

        with progress_bar(f"loading {target}") as progress:
            faces = load_source(target, progress=progress)
        summary = source_summary(faces)
        print_source_counts(summary["counts"], f"{summary['name']}: {summary['images']} images")
        print_duplicates(summary["duplicates"])
        if montage is None:
            console.print("montage: not written (give --montage PATH for a PNG of samples per class)")
            return
        out = write_montage(faces.images, list(faces.provenance["origin_label"]),
                            sorted(set(faces.provenance["origin_label"]) - {""}), montage)
    console.print(f"montage: {out}")
