"""``ferlab models list | show | path | build``: the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferlab.cli.common import console, out_console, progress_bar
from ferlab.errors import FerlabError
from ferlab.zoo import MODELS, MODELS_DIR, ZOO_FILES, get_model

app = typer.Typer(help="ferlab's pretrained models: list, show a card, locate files, build from a spec.",
                  no_args_is_help=True, rich_markup_mode=None)
NameArgument = Annotated[str, typer.Argument(help=f"A zoo model: {MODELS.choices()}.", show_default=False)]


def zoo_model(name: str):
    """The zoo model NAME (the argument: the registry's own error speaks of --model)."""
    if name not in MODELS:
        raise FerlabError(f"NAME {name}: not a zoo model; choose {MODELS.choices()} (ferlab models list)")
    return get_model(name)


@app.command("list")
def models_list() -> None:
    """The zoo's models: role, classes, test accuracy and size of the default file."""
    from rich.table import Table

    table = Table("name", "role", "classes", "test accuracy [95% CI]", "ECE", "default file", "MB", "status")
    for entry in MODELS:
        if not entry.built:
            table.add_row(entry.name, entry.spec.role, "", "", "", "", "",
                          f"not built: {entry.build_command()}")
            continue
        card = entry.card()
        lo, hi = card["test"]["accuracy_ci95"]
        default = card["files"][card["default_file"]]
        table.add_row(entry.name + (" (default)" if entry.spec.default else ""), entry.spec.role,
                      str(len(card["classes"])), f"{card['test']['accuracy']:.2%} [{lo:.2%}, {hi:.2%}]",
                      f"{card['calibration']['test_ece_default_file']:.2%}", default["file"], f"{default['bytes'] / 1e6:.2f}",
                      "built")
    out_console.print(table)


@app.command("show")
def models_show(name: NameArgument) -> None:
    """A model's card (Markdown): data, recipe, test results, calibration, latency, licence."""
    entry = zoo_model(name)
    entry.require_built()
    typer.echo((entry.folder / "card.md").read_text())


@app.command("path")
def models_path(
    name: NameArgument,
    kind: Annotated[str, typer.Option("--file", help=f"Which file: card, {', '.join(ZOO_FILES)}, or default.")] = "default",
) -> None:
    """The path of a model's file inside the installed package (for other tools or apps)."""
    entry = zoo_model(name)
    entry.require_built()
    if kind == "card":
        path = entry.folder / "card.md"
    elif kind == "default":
        path = entry.model_file("auto")
    else:
        path = entry.file(kind)
    typer.echo(str(path))


@app.command("build")
def models_build(
    name: Annotated[str, typer.Argument(help=f"A zoo model ({MODELS.choices()}) or a zoo spec .toml file.", show_default=False)],
    source: Annotated[str, typer.Option(help="The training faces: FER2013 as Kaggle image folders (or any ferlab source).")],
    work: Annotated[Path, typer.Option(help="Where prepared data and training runs go (resumable: rerun the same command).")] = Path("zoo-work"),
    out: Annotated[Path | None, typer.Option(help="Where the model's folder goes (default: the installed package's zoo).")] = None,
    weights: Annotated[str | None, typer.Option(help="ImageNet weights as a .weights.h5 file of the backbone (offline; default: the spec's).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the model's existing folder.")] = False,
    ferplus: Annotated[Path | None, typer.Option(help="FER+'s votes, for models that learn FER+ labels: fer2013_jpg_to_ferplus.csv (image folders) or fer2013new.csv (fer2013.csv).")] = None,
    validation_only: Annotated[bool, typer.Option("--validation-only", help="Train (or resume), then print the validation accuracy with and without each ensemble member (validation faces only); no model folder.")] = False,
) -> None:
    """Prepare, train (or derive), calibrate, export and evaluate one zoo model, and write its card."""
    from ferlab.zoo.build import build_model, spec_for

    spec, _ = spec_for(name)
    epochs = (spec.run or {}).get("train", {}).get("epochs")
    with progress_bar(f"building {spec.name}") as progress:
        card = build_model(name, source=source, work=work, out=out, weights=weights, overwrite=overwrite,
                           ferplus=ferplus, on_stage=lambda text: console.print(text),
                           on_epoch=(lambda row: progress(row["epoch"], epochs)) if epochs else None,
                           validation_only=validation_only)
    if validation_only:
        _print_member_validation(card)
        return
    lo, hi = card["test"]["accuracy_ci95"]
    console.print(f"{card['name']}: test accuracy {card['test']['accuracy']:.2%} [{lo:.2%}, {hi:.2%}], "
                  f"ECE {card['calibration']['test_ece_before']:.2%} -> {card['calibration']['test_ece_after']:.2%} "
                  f"(default file {card['calibration']['test_ece_default_file']:.2%}); "
                  f"wrote {(out or MODELS_DIR) / spec.name}")


def _print_member_validation(record: dict) -> None:
    from rich.table import Table

    faces = record["faces"]
    table = Table(title=f"{record['name']} on {faces:,} validation faces")
    for column in ("networks", "validation accuracy", "faces right"):
        table.add_column(column)
    rows = [("as the spec combines them", record["accuracy"])]
    rows += [(f"without {name}", acc) for name, acc in record.get("without", {}).items()]
    rows += [(f"{name} alone", acc) for name, acc in record.get("alone", {}).items()]
    for label, accuracy in rows:
        table.add_row(label, f"{accuracy:.2%}", f"{round(accuracy * faces):,}")
    out_console.print(table)
    for name, accuracy in record.get("without", {}).items():
        verdict = "raises it: keep" if accuracy < record["accuracy"] else "does not raise it: drop"
        out_console.print(f"{name}: the ensemble without it {accuracy:.2%}; the member {verdict}")
