"""The architecture as checked facts: layering and acyclic imports (import-linter contracts in
pyproject.toml), one owner of the face size, and registries that the command line reads."""

from __future__ import annotations

import io
import tokenize
from contextlib import redirect_stdout

import pytest

from conftest import REPO

SRC = REPO / "src" / "ferlab"


def test_import_contracts_are_kept():
    """Layers (cli on top, imported by nothing; deploy apps over the pipeline over detectors and formats)
    and no import cycle between sibling modules anywhere (pyproject.toml's [tool.importlinter])."""
    from importlinter.cli import lint_imports

    out = io.StringIO()
    with redirect_stdout(out):
        code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    report = out.getvalue()
    print(report[report.find("Contracts"):])
    assert code == 0, report
    assert "3 kept, 0 broken" in report


def test_only_the_face_module_states_the_face_size():
    """48 appears as a number in ferlab.face alone; every other module reads FACE_SIZE / FACE_SHAPE."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        with path.open("rb") as fh:
            for tok in tokenize.tokenize(fh.readline):
                if tok.type == tokenize.NUMBER and tok.string in ("48", "48.0", "2304"):
                    found.append(f"{path.relative_to(SRC)}:{tok.start[0]}")
    assert len(found) == 1 and found[0].startswith("face.py:"), found


@pytest.mark.parametrize("command, registry_module, registry", [
    ("predict", "ferlab.deploy.detection", "DETECTORS"),
    ("live", "ferlab.deploy.detection", "DETECTORS"),
    ("serve", "ferlab.deploy.detection", "DETECTORS"),
    ("export", "ferlab.cli.export", "EXPORT_TARGETS"),
    ("live", "ferlab.deploy.formats", "FORMATS"),
])
def test_cli_help_lists_every_registered_choice(command, registry_module, registry):
    """A detector, format or export target registered in the library shows up in the command's help without a
    CLI edit."""
    import importlib

    from typer.testing import CliRunner

    from ferlab.cli import app

    names = getattr(importlib.import_module(registry_module), registry).names()
    text = " ".join(CliRunner().invoke(app, [command, "--help"], terminal_width=200).output.split())
    missing = [n for n in names if n not in text]
    assert not missing, f"{command} --help does not mention {missing}"


def test_help_keeps_bracketed_words():
    """Help texts are plain text: '[model], [train]' are not eaten as Rich markup."""
    from typer.testing import CliRunner

    from ferlab.cli import app

    text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    assert "data, [model], [train], optional preset" in " ".join(text.split())


def test_the_command_line_and_exported_runtimes_do_not_import_tensorflow():
    """Starting the CLI and running an exported model (LiteRT / ONNX Runtime) must not pay TensorFlow's import
    (seconds, hundreds of MB): only the Keras format and training load it."""
    import subprocess
    import sys

    code = ("import sys, ferlab.cli, ferlab.deploy.formats, ferlab.deploy.pipeline, ferlab.deploy.detection, "
            "ferlab.deploy.live, ferlab.deploy.predict, ferlab.models.pooling, ferlab.report\n"
            "from ferlab.deploy.formats.litert import LiteRTClassifier\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_data_prepare_help_lists_every_source_kind():
    from typer.testing import CliRunner

    from ferlab.cli import app
    from ferlab.data.source_kinds import SOURCES

    text = " ".join(CliRunner().invoke(app, ["data", "prepare", "--help"], terminal_width=200).output.split())
    assert all(" ".join(kind.summary.split()) in text for kind in SOURCES), text


def test_the_page_takes_the_face_size_and_the_smoothing_from_the_server():
    """The browser's code states neither number: ferlab.face and ferlab.deploy.tracking own them, and the
    on-device manifest the server writes (OnDevice.manifest, also the static site's) carries them to the page."""
    import re

    from ferlab.deploy.tracking import DEFAULT_SMOOTHING
    from ferlab.deploy.web.ondevice import OnDevice
    from ferlab.face import FACE_SIZE

    manifest = OnDevice("test").manifest(["a", "b"], 0.0)
    assert (manifest["face_size"], manifest["smoothing"]) == (FACE_SIZE, DEFAULT_SMOOTHING)
    number = re.compile(rf"(?<![\w.])({FACE_SIZE}|{re.escape(str(DEFAULT_SMOOTHING))})(?![\w.])")
    found = []
    for path in sorted((SRC / "deploy" / "web" / "static").rglob("*.js")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r"(^|\s)//.*$", "", line)  # comments may describe the numbers
            found += [f"{path.relative_to(SRC)}:{n}: {line.strip()}" for _ in number.finditer(code)]
    assert not found, found


def test_the_wheel_carries_every_file_of_the_page():
    """pyproject.toml's package data covers everything under deploy/web/static (a new page module included)."""
    import tomllib

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ferlab"]
    shipped = {p for pattern in patterns for p in SRC.glob(pattern) if p.is_file()}
    page = {p for p in (SRC / "deploy" / "web" / "static").rglob("*") if p.is_file()}
    assert not page - shipped, sorted(str(p.relative_to(SRC)) for p in page - shipped)
