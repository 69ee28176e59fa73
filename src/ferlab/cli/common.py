"""What every command shares: the consoles, progress bars, options declared once, one-line errors."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ferlab.deploy.detection import DETECTORS, detector_help
from ferlab.deploy.formats import model_file_words
from ferlab.errors import FerlabError
from ferlab.zoo import MODELS, default_model


def _console(stderr: bool) -> Console:
    # Tables and messages keep their width when piped (CI logs): Rich's 80-column default squeezes them.
    # The stream itself is looked up on each write (stderr=True / no file), so test runners can capture it.
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


console = _console(stderr=True)  # progress, messages, summaries beside a table on stdout
out_console = _console(stderr=False)  # results

# ------------------------------------------------------------------------------------------ shared options
ModelOption = Annotated[str | None, typer.Option(
    help=f"The model: a zoo model's name ({MODELS.choices()}; default {default_model().name}: see "
         f"`ferlab models list`), or {model_file_words()}.")]
MinConfidenceOption = Annotated[float, typer.Option(
    help="Label a face 'uncertain' when its top (calibrated) probability is below this; 0: never.")]
DetectorOption = Annotated[str, typer.Option(help=f"Face detector: {detector_help()}.")]
DetectorModelOption = Annotated[Path | None, typer.Option(
    help="The detector's model file, for a detector that needs one: "
         + "; ".join(f"{s.name}: {s.model_file}" for s in DETECTORS if s.model_file) + ".")]
AllFacesOption = Annotated[bool, typer.Option("--all-faces/--largest", help="Every face, or only the largest one per frame.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


def model_path(model: str | None, backend: str = "auto") -> Path:
    """--model -> the file or run directory to load: the default zoo model when not given (said on stderr)."""
    from ferlab.zoo import resolve_model

    path = resolve_model(model, backend)
    if model is None or not Path(model).exists():
        name = model or f"{default_model().name} (the default)"
        console.print(f"model: zoo model {name}, {path.name}")
    return path


def positive(option: str, value: int | float | None, minimum: int = 1) -> None:
    """One error line when ``value`` is given and below ``minimum``."""
    if value is not None and value < minimum:
        raise FerlabError(f"{option}: must be at least {minimum}, got {value}")


def make_detector_checked(name: str, model: Path | None, **options):
    """The detector, built now so a bad --detector / --detector-model fails before a model loads."""
    from ferlab.deploy.detection import make_detector

    return make_detector(name, model, **options)


def load_classifier_with_status(model: Path, num_threads: int | None = None):
    """The classifier for a model path, with a status line while it loads."""
    from ferlab.deploy.formats import load_classifier

    with console.status("loading the model"):
        return load_classifier(model, num_threads=num_threads)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    """A Rich progress bar; yields a ``(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def validation_message(exc, option_of_field: dict[str, str] | None = None) -> str:
    """A pydantic error as one line naming the command-line option."""
    err = exc.errors()[0]
    field = str(err["loc"][-1]) if err["loc"] else "config"
    option = (option_of_field or {}).get(field, field.replace("_", "-"))
    return f"--{option}: {err['msg']}"
