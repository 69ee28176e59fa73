"""The ``ferlab`` command line: a thin layer over the Python API that nothing in the library imports.

One module per command group (``data``, the research commands, each deployment command); options that
several commands share are declared once in :mod:`ferlab.cli.common`, and every choice list is read from
the library's registries.
"""

from __future__ import annotations

import os
import sys

import typer

from ferlab.cli import data, export, live, models, predict, research, serve
from ferlab.errors import FerlabError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the real output

# rich_markup_mode=None: help texts are plain text, so "[model]" or "[train]" stay as written.
app = typer.Typer(help="Facial expression recognition: data, models, studies, reports, deployment.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
research.register(app)
app.command("export")(export.export_cmd)
app.command("predict")(predict.predict_cmd)
app.command("live")(live.live_cmd)
app.command("serve")(serve.serve_cmd)
app.command("web-setup")(serve.web_setup_cmd)


def main() -> None:
    """Entry point: user errors print one line and exit 2 (3 for a failed export parity), without a traceback."""
    try:
        app()
    except FerlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)

