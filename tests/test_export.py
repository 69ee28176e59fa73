"""`ferlab export`: LiteRT/ONNX exports of a model trained on real FER2013 agree with Keras, and bad input
fails cleanly (one line, exit 2, nothing written).

Run with ``-s`` to see the measured agreement, max |delta p|, file size and latency of each export.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error

from ferlab.deploy.formats import FORMATS, export_formats
from ferlab.models.pooling import list_poolings

# Every export format x quantisation in the registry: a new format is tested here without an edit.
VARIANTS = [(fmt, q) for fmt in export_formats() for q in FORMATS.get(fmt).agreement_bound]


def ferlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=300)




def no_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def exports(trained_run, tmp_path_factory):
    """(format, quantize) -> (model file, parity report), each exported once, on demand."""
    from ferlab.deploy.export import export_run

    folder = tmp_path_factory.mktemp("exports")
    done = {}

    def get(fmt: str, quantize: str):
        if (fmt, quantize) not in done:
            out = folder / f"model-{quantize}{FORMATS.get(fmt).suffix}"
            report = export_run(trained_run, fmt, quantize, out, strict=False, latency_runs=20)
            done[fmt, quantize] = (out, report)
        return done[fmt, quantize]

    return get


# ------------------------------------------------------------------------------------------------- parity
@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "quantize"), VARIANTS, ids=[f"{f}-{q}" for f, q in VARIANTS])
def test_export_parity_on_real_fer2013(exports, fmt, quantize):
    out, report = exports(fmt, quantize)
    bound = FORMATS.get(fmt).agreement_bound[quantize]
    print(f"\n{fmt:6s} {quantize:4s}: top-1 agreement {report['top1_agreement']:.2%} on {report['n_images']} test faces "
          f"(bound {report['bound']:.1%}), max |dp| {report['max_abs_diff']:.3g}, mean |dp| {report['mean_abs_diff']:.3g}, "
          f"accuracy {report['exported_accuracy']:.2%} (Keras {report['keras_accuracy']:.2%}), "
          f"size {report['file_size_bytes'] / 1e3:.0f} kB (Keras {report['keras_file_size_bytes'] / 1e3:.0f} kB), "
          f"latency {report['latency_ms']:.2f} ms (Keras {report['keras_latency_ms']:.2f} ms)")
    assert report["n_images"] == 1000  # all of fer2013_paper5's test split (200 per class)
    assert report["bound"] == bound == {"none": 0.995, "fp16": 0.995, "int8": 0.97, "dynamic": 0.97}[quantize]  # as documented
    assert report["top1_agreement"] >= bound and report["passed"] is True
    assert report["max_abs_diff"] < {"none": 1e-4, "fp16": 0.05, "int8": 0.5, "dynamic": 0.5}[quantize]
    assert abs(report["exported_accuracy"] - report["keras_accuracy"]) <= 1 - bound

    # the files: model, sidecar and parity report, nothing else
    assert out.stat().st_size == report["file_size_bytes"] > 0
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["classes"] == report["classes"] == ["angry", "anxious", "happy", "neutral", "sad"]
    assert (sidecar["format"], sidecar["quantize"]) == (fmt, quantize)
    assert sidecar["source_run"] == report["source_run"]
    assert sidecar["input"]["shape"] == [None, 48, 48, 1]
    on_disk = json.loads(Path(f"{out}.parity.json").read_text())
    assert on_disk["top1_agreement"] == report["top1_agreement"] and on_disk["max_abs_diff"] == report["max_abs_diff"]
    for key in ("format", "quantize", "n_images", "file_size_bytes", "latency_ms", "keras_latency_ms", "source_run",
                "classes", "passed"):
        assert key in on_disk, key
    assert not no_temporaries(out.parent)

    if fmt == "litert":
        # int8 takes the raw uint8 pixels as they are (scale 1, zero point 0); the others float32 pixels
        expected = {"dtype": "uint8", "scale": 1.0, "zero_point": 0} if quantize == "int8" else {"dtype": "float32"}
        spec = sidecar["input"]
        assert {k: spec.get(k, spec.get("quantization", {}).get(k)) for k in expected} == expected


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "quantize"), VARIANTS, ids=[f"{f}-{q}" for f, q in VARIANTS])
def test_load_classifier_reproduces_the_parity_report(exports, fer2013_paper5, fmt, quantize):
    from ferlab.deploy.formats import load_classifier

    out, report = exports(fmt, quantize)
    clf = load_classifier(out)
    assert clf.backend == fmt and clf.classes == report["classes"]
    x, y = fer2013_paper5.arrays("test")
    rows = np.asarray(report["indices"])
    assert np.array_equal(y[rows], report["labels"])
    probs = clf.predict(x[rows])  # uint8 (N, 48, 48, 1) faces, as the data layer gives them
    assert probs.shape == (len(rows), 5)
    # int8 LiteRT computes the softmax in 8 bits (steps of 1/256), so its rows sum to 1 only roughly
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=0.05 if quantize == "int8" else 1e-3)
    predicted = probs.argmax(1)
    assert np.array_equal(predicted, report["predictions"])
    agreement = float((predicted == np.asarray(report["keras_predictions"])).mean())
    assert agreement == report["top1_agreement"]
    # one face at a time (the LiteRT file's own batch size) gives the same labels
    assert [int(clf.predict(x[i]).argmax()) for i in rows[:20]] == report["predictions"][:20]


@pytest.mark.real_data
@pytest.mark.slow
def test_cli_export_then_refuses_to_overwrite(trained_run, tmp_path):
    out = tmp_path / "face.onnx"
    result = ferlab("export", str(trained_run), "--out", str(out), "--parity-images", "200", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout and "top-1 agreement" in result.stdout
    report = json.loads(Path(f"{out}.parity.json").read_text())
    assert report["format"] == "onnx" and report["n_images"] == 200 and report["passed"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"face.onnx", "face.onnx.json", "face.onnx.parity.json"}

    again = ferlab("export", str(trained_run), "--out", str(out), cwd=tmp_path)
    assert_one_line_error(again, str(out), "already exists", "--overwrite")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # untouched, no temporaries


@pytest.mark.real_data
@pytest.mark.slow
def test_parity_below_the_bound_keeps_the_files_and_raises(trained_run, tmp_path, monkeypatch):
    from ferlab.deploy import export
    from ferlab.deploy.formats import FORMATS

    monkeypatch.setitem(FORMATS.get("onnx").agreement_bound, "none", 1.01)  # unreachable: the check must fail
    out = tmp_path / "m.onnx"
    with pytest.raises(export.ParityError, match="parity check failed") as failure:
        export.export_run(trained_run, "onnx", "none", out, parity_images=100, latency_runs=3)
    assert failure.value.exit_code == 3 and "\n" not in str(failure.value)
    report = json.loads(Path(f"{out}.parity.json").read_text())
    assert report["passed"] is False and report["bound"] == 1.01
    assert out.is_file() and Path(f"{out}.json").is_file()


# ---------------------------------------------------------------------------------------------- bad input
def fake_run(root: Path, with_model: bool = True) -> Path:
    """A run directory that looks finished (the checks below fail before the model or data is read)."""
    root.mkdir()
    if with_model:
        (root / "model.keras").write_bytes(b"not read")
    (root / "metrics.json").write_text(json.dumps({"status": "ok", "classes": ["a", "b"]}))
    (root / "config.json").write_text(json.dumps({"data": str(root / "no-data")}))
    return root


def test_run_dir_without_model(tmp_path):
    run = fake_run(tmp_path / "run", with_model=False)
    result = ferlab("export", str(run), "--out", str(tmp_path / "m.tflite"), cwd=tmp_path)
    assert_one_line_error(result, str(run), "no model.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.json"]


def test_missing_run_dir(tmp_path):
    result = ferlab("export", str(tmp_path / "nope"), cwd=tmp_path)
    assert_one_line_error(result, "nope", "no such run directory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["--format", "tflite"], "--format"),
    (["--format", "coreml"], "--format"),
    (["--quantize", "int4"], "--quantize"),
    (["--format", "onnx", "--out", "m.tflite"], "--out"),
    (["--parity-images", "0"], "--parity-images"),
], ids=["format-tflite", "format-coreml", "quantize-int4", "suffix-mismatch", "parity-images-0"])
def test_bad_options(tmp_path, args, needle):
    run = fake_run(tmp_path / "run")
    result = ferlab("export", str(run), *args, cwd=tmp_path)
    line = assert_one_line_error(result, needle)
    assert "choose" in line or "give" in line or "must" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert not (run / "exports").exists()


def test_existing_out_without_overwrite(tmp_path):
    run = fake_run(tmp_path / "run")
    for name in ("m.tflite", "m.tflite.parity.json"):  # any of the three outputs blocks the export
        out = tmp_path / name
        out.write_bytes(b"keep me")
        result = ferlab("export", str(run), "--out", str(tmp_path / "m.tflite"), cwd=tmp_path)
        assert_one_line_error(result, "already exists", "--overwrite")
        assert out.read_bytes() == b"keep me"
        out.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_missing_data_names_the_fix(tmp_path):
    run = fake_run(tmp_path / "run")
    result = ferlab("export", str(run), "--out", str(tmp_path / "m.tflite"), cwd=tmp_path)
    assert_one_line_error(result, "config.json", "--data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_format_choices_are_one_registry(tmp_path):
    """--format reads EXPORT_TARGETS: every exportable model format of FORMATS (registering one adds it), then
    the static site; an unknown name is one error line naming them all."""
    from ferlab.cli.export import EXPORT_TARGETS
    from ferlab.errors import FerlabError

    assert EXPORT_TARGETS.names() == (*export_formats(), "web")
    with pytest.raises(FerlabError, match="--format: unknown export format 'coreml'; choose keras, .* or web"):
        EXPORT_TARGETS.get("coreml")


def test_export_source_is_a_zoo_model_or_a_run(tmp_path, monkeypatch):
    """MODEL_OR_RUN, decided in one place for every target: nothing is the default zoo model, a zoo name is that
    model, an existing path is a run directory (even one named like a zoo model), anything else one line."""
    from ferlab.cli.export import export_source
    from ferlab.errors import FerlabError
    from ferlab.zoo import MODELS, default_model

    name = default_model().name
    assert export_source(None) is default_model() and export_source(name) is MODELS.get(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    assert export_source(name) == Path(name)
    with pytest.raises(FerlabError, match=re.escape(f"MODEL_OR_RUN nope: no such run directory and not a zoo model; "
                                                    f"give a zoo model ({MODELS.choices()})")):
        export_source("nope")


def test_web_from_a_run_needs_out_before_anything_is_exported(tmp_path):
    from ferlab.cli.export import EXPORT_TARGETS, ExportRequest
    from ferlab.errors import FerlabError

    run = fake_run(tmp_path / "run")
    request = ExportRequest("web", "none", None, False, 10, 10, None)
    with pytest.raises(FerlabError, match="--format web: give --out DIR"):
        EXPORT_TARGETS.get("web").from_run(run, request)
    assert not (run / "exports").exists()


@pytest.mark.slow
@pytest.mark.parametrize("pooling", list_poolings())
def test_every_pooling_exports_to_every_format(pooling, tmp_path):
    """Each registered pooling (a new one is tested here without an edit) converts to each export format, and
    the exported float model agrees with Keras (random-init fercnn, random faces: plain ops, no custom ones)."""
    from ferlab.deploy.export import convert, open_exported
    from ferlab.face import random_faces
    from ferlab.models import ModelConfig, build_model

    model = build_model(ModelConfig(backbone="fercnn", pooling=pooling, num_classes=5))
    faces = random_faces(8)
    reference = model.predict_on_batch(faces)
    for fmt in export_formats():
        blob, _ = convert(model, fmt, "none")
        path = tmp_path / f"model{FORMATS.get(fmt).suffix}"
        path.write_bytes(blob)
        got = open_exported(path, fmt, list("abcde")).predict(faces)
        assert np.abs(got - reference).max() < 1e-4, (pooling, fmt)
