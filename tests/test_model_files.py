"""Model files that cannot be used -- corrupt, of another kind, or refused by Keras's safe mode -- are one
error line (exit 2) in every command that loads a model: predict, serve, export, evaluate; nothing is
written. Before, these were 45-76 line tracebacks (Keras even said "File not found" for a corrupt zip)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

pytestmark = [pytest.mark.real_data]


def error_of(*args: str) -> str:
    """Run the CLI in this process; the FerlabError it raised, as text (one line)."""
    from typer.testing import CliRunner

    from ferlab.cli import app
    from ferlab.errors import FerlabError

    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, FerlabError), (result.exception, result.output)
    text = str(result.exception)
    assert "\n" not in text and len(text) < 400, text
    return text


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, trained_run):
    """name -> (path, words the error names). Each sits beside a valid sidecar, so only the file is at fault."""
    import keras

    folder = tmp_path_factory.mktemp("bad-models")
    classes = json.loads((trained_run / "metrics.json").read_text())["classes"]
    files = {}

    def add(name: str, data: bytes | None, *needles: str) -> None:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        (folder / f"{name}.json").write_text(json.dumps({"classes": classes}))
        files[name] = (path, needles)

    rng = np.random.default_rng(0)
    add("corrupt.keras", rng.bytes(4096), "not a Keras model file")
    with zipfile.ZipFile(folder / "foreign.keras", "w") as z:  # a zip, but not a Keras archive
        z.writestr("notes.txt", "hello")
    add("foreign.keras", None, "Keras cannot load it")
    add("corrupt.tflite", rng.bytes(4096), "LiteRT cannot load it")
    add("empty.tflite", b"", "LiteRT cannot load it")
    add("corrupt.onnx", rng.bytes(4096), "ONNX Runtime cannot load it")
    # A model Keras's safe mode refuses: it holds Python code (a Lambda layer).
    faces = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t / 255.0)(faces)
    x = keras.layers.Flatten()(x)
    keras.Model(faces, keras.layers.Dense(len(classes), activation="softmax")(x)).save(folder / "lambda.keras")
    add("lambda.keras", None, "safe mode")
    return files


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("img") / "face.png"
    cv2.imwrite(str(path), np.full((96, 96, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("name", ["corrupt.keras", "foreign.keras", "lambda.keras", "corrupt.tflite", "empty.tflite",
                                  "corrupt.onnx"])
def test_predict_and_serve_name_the_file(name, bad_models, image, tmp_path):
    path, needles = bad_models[name]
    for command in (["predict", str(image), "--model", str(path), "--out", str(tmp_path / "r.csv")],
                    ["serve", "--model", str(path), "--port", "0"]):
        text = error_of(*command)
        assert str(path) in text and all(n in text for n in needles), (command, text)
    assert not (tmp_path / "r.csv").exists()


@pytest.fixture
def run_with(trained_run, tmp_path):
    """A copy of the trained run whose model.keras is replaced by another file."""

    def make(source: Path) -> Path:
        run = tmp_path / "run"
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("exports", "evaluations", "tb"))
        shutil.copyfile(source, run / "model.keras")
        return run

    return make


@pytest.mark.parametrize("name", ["corrupt.keras", "lambda.keras"])
def test_export_and_evaluate_name_the_file(name, bad_models, run_with, fer2013_paper5):
    path, needles = bad_models[name]
    run = run_with(path)
    before = sorted(p.name for p in run.rglob("*"))
    for command in (["export", str(run), "--format", "onnx", "--out", str(run.parent / "m.onnx")],
                    ["evaluate", str(run), "--data", str(fer2013_paper5.path)]):
        text = error_of(*command)
        assert str(run / "model.keras") in text and all(n in text for n in needles), (command, text)
    assert sorted(p.name for p in run.rglob("*")) == before and not (run.parent / "m.onnx").exists()


def test_cli_exit_code_and_single_stderr_line(bad_models, image, tmp_path):
    """The real command: exit 2, one `error:` line on stderr, no traceback, no TensorFlow chatter."""
    path, _ = bad_models["corrupt.keras"]
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "predict", str(image), "--model", str(path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr


def test_a_keras_model_prints_no_tensorflow_startup_lines(trained_run, image, tmp_path):
    """predict with a Keras model: TensorFlow's start-up lines (printed twice before) are not shown at all."""
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "predict", str(image), "--model", str(trained_run),
                             "--out", str(tmp_path / "r.csv")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    chatter = [line for line in result.stderr.splitlines()
               if any(w in line for w in ("oneDNN", "absl::", "cpu_feature_guard", "TensorFlow binary", "E0000", "W0000"))]
    assert chatter == [], result.stderr
