"""``ferlab export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferlab.cli.common import OverwriteOption, console
from ferlab.cli.show import print_export_report
from ferlab.deploy.formats import FORMATS, QUANTIZE, export_formats

FORMAT_HELP = (", ".join(f"{n} ({FORMATS.get(n).suffix})" for n in export_formats())
               + ", or web (a static on-device site: a folder); default: from --out's suffix, else litert.")


def export_cmd(
    run_dir: Annotated[str | None, typer.Argument(metavar="MODEL_OR_RUN", help="A zoo model's name (ferlab models list; default: the default zoo model), or a finished run directory (holds model.keras).", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    quantize: Annotated[str, typer.Option(help=f"{', '.join(QUANTIZE)}: float32, float16 weights, int8 calibrated on the run's training faces, or int8 weights with float activations (LiteRT).")] = "none",
    out: Annotated[Path | None, typer.Option(help="The exported file (default RUN_DIR/exports/model[-QUANTIZE].SUFFIX); FILE.json and FILE.parity.json go beside it.")] = None,
    parity_images: Annotated[int, typer.Option(help="Test faces compared with the Keras model (all of the test split if fewer).")] = 1000,
    representative_images: Annotated[int, typer.Option(help="int8: training faces used for calibration.")] = 300,
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
    from ferlab.deploy.export import check_passed, export_run
    from ferlab.zoo import MODELS, default_model, export_zoo_file

    if fmt is not None and fmt.lower() == "web":
        _export_web(run_dir, quantize, out, overwrite, parity_images, representative_images, data)
        return
    if run_dir is None or (not Path(run_dir).exists() and run_dir in MODELS):
        name = run_dir or default_model().name
        written = export_zoo_file(name, fmt, quantize, out, overwrite)
        console.print(f"wrote {written} (+ .json, .card.md): zoo model {name}")
        return
    _require_run_or_model(run_dir)

    with console.status("exporting") as status:
        report = export_run(run_dir, fmt, quantize, out, parity_images=parity_images,
                            representative_images=representative_images, data=data, overwrite=overwrite,
                            strict=False, on_stage=lambda text: status.update(text))
    print_export_report(report)
    console.print(f"wrote {report['file']} (+ .json, .parity.json)")
    check_passed(report)


def _require_run_or_model(run_dir: str) -> None:
    """A name that is neither a path nor a zoo model: say both what was looked for and the names there are."""
    from ferlab.errors import FerlabError
    from ferlab.zoo import MODELS

    if not Path(run_dir).exists():
        raise FerlabError(f"MODEL_OR_RUN {run_dir}: no such run directory and not a zoo model; give a zoo model "
                          f"({MODELS.choices()}) or a finished `ferlab train` run directory")


def _export_web(run_dir, quantize, out, overwrite, parity_images, representative_images, data) -> None:
    """--format web: the static on-device site, from a zoo model's .tflite or a run's (exported first)."""
    from ferlab.deploy.export import check_passed, default_out, export_run
    from ferlab.deploy.formats import classes_of
    from ferlab.deploy.web.static_export import export_web
    from ferlab.errors import FerlabError
    from ferlab.zoo import MODELS, default_model

    if out is None:
        raise FerlabError("--format web: give --out DIR, the folder to write the site into")
    if run_dir is None or (not Path(run_dir).exists() and run_dir in MODELS):
        entry = MODELS.get(run_dir) if run_dir else default_model()
        model_file = entry.model_file("litert")
        name, licence = entry.name, entry.card()["data"]["licence"]
    else:  # the run's LiteRT export, made now unless an earlier `ferlab export` left it there
        _require_run_or_model(run_dir)
        model_file = default_out(run_dir, "litert", quantize)
        if not model_file.is_file():
            with console.status("exporting the classifier to LiteRT") as status:
                report = export_run(run_dir, "litert", quantize, None, parity_images=parity_images,
                                    representative_images=representative_images, data=data, overwrite=False,
                                    strict=False, on_stage=lambda text: status.update(text))
            check_passed(report)
            model_file = Path(report["file"])
        name, licence = Path(run_dir).name, ""
    written = export_web(model_file, classes_of(model_file), out, name=name, licence=licence, overwrite=overwrite)
    console.print(f"wrote {written}/ (a static site: serve it with `python -m http.server -d {written}`)")
