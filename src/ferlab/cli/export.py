"""``ferlab export``: what ``--format`` can make (:data:`EXPORT_TARGETS`) from what ``MODEL_OR_RUN`` names.

Design. An export target is one registry entry (:class:`ExportTarget`) with two ways to make it: from a zoo
model's shipped files, and from a trained run directory. Every exportable model format of
:data:`ferlab.deploy.formats.FORMATS` is a target (a file, converted and parity-checked; registering a
format adds it here), and so is ``web``, the static on-device site (a folder). ``--format``'s choices and
help, the dispatch and the tests read :data:`EXPORT_TARGETS`. Which of the two sources an argument names is
decided once, by :func:`export_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ferlab.cli.common import OverwriteOption, console
from ferlab.cli.show import print_export_report
from ferlab.deploy.export import PARITY_IMAGES, REPRESENTATIVE_IMAGES
from ferlab.deploy.formats import FORMATS, QUANTIZE, default_export_format, export_formats
from ferlab.errors import FerlabError
from ferlab.registry import Registry
from ferlab.zoo import MODELS, ZooModel, default_model


@dataclass(frozen=True)
class ExportRequest:
    """One ``ferlab export`` call's options, as a target's makers take them (``fmt``: the target's name)."""

    fmt: str
    quantize: str
    out: Path | None
    overwrite: bool
    parity_images: int
    representative_images: int
    data: Path | None


@dataclass(frozen=True)
class ExportTarget:
    """One ``--format`` choice: what it writes, in words for the help, and how it is made from either source."""

    name: str
    writes: str
    from_zoo: Callable[[ZooModel, ExportRequest], None]
    from_run: Callable[[Path, ExportRequest], None]


EXPORT_TARGETS: Registry[ExportTarget] = Registry("export format", "--format")


def register_target(target: ExportTarget) -> ExportTarget:
    return EXPORT_TARGETS.register(target.name, target)


def export_source(model_or_run: str | None) -> ZooModel | Path:
    """What ``MODEL_OR_RUN`` names: nothing, the default zoo model; an existing path, a run directory (a path
    wins over a zoo model of the same name); else a zoo model's name. Anything else is one error line."""
    if model_or_run is None:
        return default_model()
    if Path(model_or_run).exists():
        return Path(model_or_run)
    if model_or_run in MODELS:
        return MODELS.get(model_or_run)
    raise FerlabError(f"MODEL_OR_RUN {model_or_run}: no such run directory and not a zoo model; give a zoo model "
                      f"({MODELS.choices()}) or a finished `ferlab train` run directory")


def _format_help() -> str:
    words = [f"{t.name} ({t.writes})" for t in EXPORT_TARGETS]
    return f"{', '.join(words[:-1])}, or {words[-1]}; default: from --out's suffix, else litert."


# ------------------------------------------------------------------------------ a model file (FORMATS)
def _file_from_zoo(entry: ZooModel, request: ExportRequest) -> None:
    """A copy of the file the zoo ships for this format and quantisation, with its sidecar and card."""
    from ferlab.zoo import export_zoo_file

    written = export_zoo_file(entry.name, request.fmt, request.quantize, request.out, request.overwrite)
    console.print(f"wrote {written} (+ .json, .card.md): zoo model {entry.name}")


def _file_from_run(run_dir: Path, request: ExportRequest) -> None:
    """The run's model converted, with its sidecar and parity report; exit code 3 below the parity bound."""
    from ferlab.deploy.export import check_passed

    report = _convert_run(run_dir, request, fmt=request.fmt, out=request.out, overwrite=request.overwrite,
                          status_text="exporting")
    print_export_report(report)
    console.print(f"wrote {report['file']} (+ .json, .parity.json)")
    check_passed(report)


def _convert_run(run_dir: Path, request: ExportRequest, *, fmt: str, out: Path | None, overwrite: bool,
                 status_text: str) -> dict:
    """``export_run`` with the request's options and a status line; the parity verdict is the caller's."""
    from ferlab.deploy.export import export_run

    with console.status(status_text) as status:
        return export_run(run_dir, fmt, request.quantize, out, parity_images=request.parity_images,
                          representative_images=request.representative_images, data=request.data,
                          overwrite=overwrite, strict=False, on_stage=lambda text: status.update(text))


for _name in export_formats():
    register_target(ExportTarget(_name, FORMATS.get(_name).suffix, _file_from_zoo, _file_from_run))


# ------------------------------------------------------------------------------ the static site (web)
def _site_out(request: ExportRequest) -> Path:
    if request.out is None:  # checked first: a run's LiteRT export would otherwise be made for nothing
        raise FerlabError("--format web: give --out DIR, the folder to write the site into")
    return request.out


def _web_from_zoo(entry: ZooModel, request: ExportRequest) -> None:
    """The site around the zoo model's shipped .tflite."""
    out = _site_out(request)
    _write_site(entry.model_file("litert"), out, request, entry.name, entry.card()["data"]["licence"])


def _web_from_run(run_dir: Path, request: ExportRequest) -> None:
    """The site around the run's LiteRT export, made now unless an earlier ``ferlab export`` left it there."""
    from ferlab.deploy.export import check_passed, default_out

    out = _site_out(request)
    model_file = default_out(run_dir, "litert", request.quantize)
    if not model_file.is_file():
        report = _convert_run(run_dir, request, fmt="litert", out=None, overwrite=False,
                              status_text="exporting the classifier to LiteRT")
        check_passed(report)
        model_file = Path(report["file"])
    _write_site(model_file, out, request, run_dir.name, "")


def _write_site(model_file: Path, out: Path, request: ExportRequest, name: str, licence: str) -> None:
    from ferlab.deploy.formats import classes_of
    from ferlab.deploy.web.static_export import export_web

    written = export_web(model_file, classes_of(model_file), out, name=name, licence=licence,
                         overwrite=request.overwrite)
    console.print(f"wrote {written}/ (a static site: serve it with `python -m http.server -d {written}`)")


register_target(ExportTarget("web", "a static on-device site: a folder", _web_from_zoo, _web_from_run))


# ------------------------------------------------------------------------------ the command
def export_cmd(
    run_dir: Annotated[str | None, typer.Argument(metavar="MODEL_OR_RUN", help="A zoo model's name (ferlab models list; default: the default zoo model), or a finished run directory (holds model.keras).", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", help=_format_help())] = None,
    quantize: Annotated[str, typer.Option(help=f"{', '.join(QUANTIZE)}: float32, float16 weights, int8 calibrated on the run's training faces, or int8 weights with float activations (LiteRT).")] = "none",
    out: Annotated[Path | None, typer.Option(help="The exported file (default RUN_DIR/exports/model[-QUANTIZE].SUFFIX); FILE.json and FILE.parity.json go beside it.")] = None,
    parity_images: Annotated[int, typer.Option(help="Test faces compared with the Keras model (all of the test split if fewer).")] = PARITY_IMAGES,
    representative_images: Annotated[int, typer.Option(help="int8: training faces used for calibration.")] = REPRESENTATIVE_IMAGES,
    data: Annotated[Path | None, typer.Option(help="Prepared data directory (default: the one in RUN_DIR/config.json).")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Export a zoo model (by name) or a trained run's model: raw 48x48 grayscale faces in, probabilities out.

    Given a zoo model (or nothing: the default one), copies one of its shipped files (`ferlab models show NAME`)
    with its sidecar and its card (FILE.card.md): those files were exported and tested when the model was built.

    Given a run directory, converts its model and writes FILE, its sidecar FILE.json (classes, input spec,
    provenance) and FILE.parity.json (top-1 agreement and max |delta p| against Keras on test faces, sizes,
    latencies). Exit code 3 when the agreement is below the format's bound (99.5% for none/fp16, 97% for
    int8/dynamic); the files are kept.
    """
    target = EXPORT_TARGETS.get(fmt or default_export_format(out))
    request = ExportRequest(target.name, quantize, out, overwrite, parity_images, representative_images, data)
    source = export_source(run_dir)
    if isinstance(source, Path):
        target.from_run(source, request)
    else:
        target.from_zoo(source, request)
