"""An exported model's sidecar, ``FILE.json`` beside ``FILE``: its one schema, its one writer, its reader.

A model file's graph does not carry its class names; the sidecar does, with what the input tensor takes,
what comes out, the runtime that runs it, what the conversion did and where the file came from. Both
writers of exported files go through :func:`write_sidecar`: ``ferlab export`` (a run's model,
:mod:`ferlab.deploy.export`) and ``ferlab models build`` (a zoo model's files, :mod:`ferlab.zoo.build`).

Design notes:

- :class:`Sidecar` declares every key once, ``extra="forbid"``: a key no field declares is an error when
  writing, not a silent addition. Adding a key is one field here. The input description is the exception:
  its common part is typed and each format's own words (``ModelFormat.input_spec``) are kept as given, so a
  format is still one registry entry plus its module.
- The JSON keeps its form: sorted keys, and the fields that do not apply (a run's provenance in a zoo file,
  a zoo model's name in a run's export, the int8 facts of a float file) are left out rather than written
  as null. The zoo's sidecars are package data that readers depend on, so a rebuilt model's sidecar is
  byte for byte the shipped one.
- Running a model needs only ``classes`` (:func:`sidecar_classes`); the rest is provenance for people. A
  sidecar written by hand as ``{"classes": [...]}`` runs, as does one from an older ferlab.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ferlab.errors import FerlabError
from ferlab.io import atomic_write_json, read_json
from ferlab.rundir import check_classes

REEXPORT = "export the model again with `ferlab export`"  # what fixes a sidecar that cannot be read


def sidecar_path(model_file: str | os.PathLike) -> Path:
    """Where the class names and provenance of an exported model live: ``model.onnx`` -> ``model.onnx.json``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".json")


class _Part(BaseModel):
    """A part of the sidecar: every key declared; a field left at None is absent from the JSON."""

    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict:
        return self.model_dump(exclude_none=True)


class InputQuantization(_Part):
    """A quantised input tensor's parameters (LiteRT full-integer files take uint8 pixels)."""

    scale: float
    zero_point: int
    raw_pixels: bool  # scale 1 and zero point 0: the camera's uint8 crop goes in as it is


class SidecarInput(_Part):
    """What the file's input takes: the common description, then its format's own words (dtype, tensor
    name, batch note, quantisation; other keys a format adds are kept)."""

    model_config = ConfigDict(extra="allow")

    shape: list[int | None]
    layout: str
    content: str
    dtype: str
    name: str | None = None
    batch_note: str | None = None
    quantization: InputQuantization | None = None


class SidecarOutput(_Part):
    shape: list[int | None]
    dtype: str
    content: str

    @classmethod
    def probabilities(cls, n_classes: int, calibrated: bool) -> SidecarOutput:
        """Every ferlab model's output: softmax probabilities, (N, classes), float32."""
        content = "class probabilities (softmax), in the order of classes"
        return cls(shape=[None, n_classes], dtype="float32", content=f"calibrated {content}" if calibrated else content)


class RunSource(_Part):
    """Where a run's export came from: the run, its model config and the data it was trained on."""

    run: str
    model: dict
    data: str
    data_fingerprint: str


class Sidecar(_Part):
    """The sidecar of an exported model file (see the module's notes)."""

    classes: list[str]
    format: str
    quantize: str
    input: SidecarInput
    output: SidecarOutput
    runtime: str  # in words, from the format's registry entry
    # What the converter did (its facts): the int8 variant and its calibration faces.
    int8_mode: str | None = None
    representative_images: int | None = None
    ferlab_version: str
    # Provenance: a run's export ...
    source_run: str | None = None
    source: RunSource | None = None
    parity_report: str | None = None  # the parity report's file name, beside the model file
    created: str | None = None
    # ... or a zoo model's file.
    zoo_model: str | None = None


def write_sidecar(model_file: str | os.PathLike, *, classes: list[str], fmt: str, quantize: str, runtime: str,
                  input: dict, facts: dict, calibrated: bool = False, zoo_model: str | None = None,
                  source: dict | None = None, parity_report: str | None = None, created: str | None = None) -> Sidecar:
    """Write ``model_file``'s sidecar (atomically) and return it: the one writer of exported files' sidecars.

    ``input``: :func:`ferlab.deploy.export.input_spec`'s description; ``facts``: what the converter reported
    (each a :class:`Sidecar` field); ``calibrated``: the output carries a folded temperature (the zoo's
    files). Provenance: ``zoo_model``, or a run's ``source`` (:class:`RunSource`'s keys) with its
    ``parity_report`` and ``created``.
    """
    from ferlab import __version__

    try:
        sidecar = Sidecar(classes=list(classes), format=fmt, quantize=quantize, input=SidecarInput(**input),
                          output=SidecarOutput.probabilities(len(classes), calibrated), runtime=runtime, **facts,
                          ferlab_version=__version__, zoo_model=zoo_model,
                          source_run=source["run"] if source else None, source=source, parity_report=parity_report,
                          created=created)
    except ValueError as exc:  # a converter or a format describing something the schema does not declare
        raise FerlabError(f"{sidecar_path(model_file)}: not a valid sidecar ({_first_error(exc)}); "
                          f"declare the key in ferlab.deploy.sidecar.Sidecar") from None
    atomic_write_json(sidecar_path(model_file), sidecar.dump())
    return sidecar


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    error = errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def sidecar_classes(model_file: str | os.PathLike) -> list[str] | None:
    """The class names ``model_file``'s sidecar gives (checked: a non-empty list, each name once), or None
    when it has no sidecar. Only ``classes`` is read: the rest is provenance (see the module's notes)."""
    path = sidecar_path(model_file)
    if not path.is_file():
        return None
    meta = read_json(path, "model sidecar", fix=REEXPORT)
    return check_classes(meta.get("classes") if isinstance(meta, dict) else None, path, REEXPORT)


__all__ = ["RunSource", "Sidecar", "SidecarInput", "SidecarOutput", "sidecar_classes", "sidecar_path",
           "write_sidecar"]
