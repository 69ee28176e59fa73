"""The `ferlab export` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `ferlab export` to the CLI."""

    @app.command("export")
    def export_cmd(
        run_dir: Annotated[Path, typer.Argument(help="A finished run directory (holds model.keras).")],
        fmt: Annotated[str | None, typer.Option("--format", help="litert (.tflite) or onnx (.onnx); default: from --out's suffix, else litert.")] = None,
        quantize: Annotated[str, typer.Option(help="none, fp16 (float16 weights) or int8 (calibrated on the run's training faces).")] = "none",
        out: Annotated[Path | None, typer.Option(help="The exported file (default RUN_DIR/exports/model[-QUANTIZE].tflite|onnx); FILE.json and FILE.parity.json go beside it.")] = None,
        parity_images: Annotated[int, typer.Option(help="Test faces compared with the Keras model (all of the test split if fewer).")] = 1000,
        representative_images: Annotated[int, typer.Option(help="int8: training faces used for calibration.")] = 300,
        data: Annotated[Path | None, typer.Option(help="Prepared data directory (default: the one in RUN_DIR/config.json).")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing FILE, FILE.json and FILE.parity.json.")] = False,
    ) -> None:
        """Export a run's model to LiteRT or ONNX (raw 48x48 grayscale faces in, probabilities out) and check parity with Keras.

        Writes FILE, its sidecar FILE.json (classes, input spec, provenance) and FILE.parity.json (top-1
        agreement and max |delta p| against Keras on test faces, sizes, latencies). Exit code 3 when the
        agreement is below the bound (99.5% for none/fp16, 97% for int8); the files are kept.
        """
        from ferlab.cli import console, out_console
        from ferlab.deploy.export import check_passed, export_run

        with console.status("exporting") as status:
            report = export_run(run_dir, fmt, quantize, out, parity_images=parity_images,
                                representative_images=representative_images, data=data, overwrite=overwrite,
                                strict=False, on_stage=lambda text: status.update(text))
        _print_report(out_console, report)
        console.print(f"wrote {report['file']} (+ .json, .parity.json)")
        check_passed(report)

def _print_report(out_console, r: dict) -> None:
    from rich.table import Table

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
