"""ferlab's model zoo: models trained by ferlab's own commands, shipped inside the package.

Each model is one spec in ``zoo/specs/NAME.toml`` (the registry: ``ferlab models list``, the command
line's ``--model NAME``, :class:`ferlab.FaceAnalyzer` and the tests all read :data:`MODELS`) and, once
built by ``ferlab models build NAME``, a folder ``zoo/models/NAME/`` of package data:

- the spec's ``files``, each with its ``FILE.json`` sidecar (classes, input, output), exactly what
  ``ferlab export`` writes, among :data:`ZOO_FILES`: ``model.tflite`` (LiteRT float32),
  ``model-fp16.tflite`` (float16 weights), ``model-int8.tflite`` (LiteRT full-integer, uint8 pixels in),
  ``model-dynamic.tflite`` (LiteRT int8 weights, float activations), ``model.onnx`` (ONNX Runtime
  float32), ``model-int8.onnx`` (QDQ int8). The fast models ship the float32 pair and the LiteRT int8
  file; the accurate ones ship the dynamic-range file only, to keep the package small (an ImageNet
  MobileNetV2 is ~9 MB in float32, ~2.5 MB with int8 weights; full-integer int8 loses more accuracy on
  it, see the accurate specs); ``ferlab models build`` makes the others;
- ``card.json`` and ``card.md``: the model card (data and its fingerprint, protocol, split, recipe, the
  command that reproduces it, test accuracy with its 95% CI, per-class P/R/F1, confusion matrix,
  calibration, latency per runtime, parameters, file sizes, the training data's licence).

The temperature fitted on validation is folded into the classifier's weights before export, so every
shipped file already outputs calibrated probabilities. A spec's ``tta = "flip"`` puts flip test-time
augmentation in the graph too (each face's probabilities averaged with its mirror image's). A spec's recipe
is one of ``[run]`` (train a network), ``[ensemble]`` (average the calibrated probabilities of other specs'
networks in one graph: the accurate models, MobileNetV2 + two fercnn-wide, 71.21% on the validation faces
of FER2013's 7 classes vs 68.65%, 69.06% and 69.35% for each alone: the card's ``validation``) or
``[derive]`` (merge another model's classes into a coarser protocol's).

This module only reads specs and cards (no TensorFlow); building lives in :mod:`ferlab.zoo.build`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferlab.config import validate
from ferlab.errors import FerlabError
from ferlab.io import read_json
from ferlab.registry import Registry

# The zoo's file kinds, declared once: kind -> the file's name in a model's folder. A kind is FORMAT or
# FORMAT-QUANTIZE, as `ferlab export` names them; the spec's field type and FILE_EXPORTS are derived from it.
ZOO_FILES = {"litert": "model.tflite", "litert-fp16": "model-fp16.tflite", "litert-int8": "model-int8.tflite",
             "litert-dynamic": "model-dynamic.tflite", "onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
FileKind = Literal[tuple(ZOO_FILES)]  # Literal[("a", "b")] is Literal["a", "b"]: the specs' errors list the kinds
# (format, quantize) of each file kind, as `ferlab export` names them.
FILE_EXPORTS = {kind: (kind.split("-")[0], kind.split("-")[1] if "-" in kind else "none") for kind in ZOO_FILES}
CARD_JSON, CARD_MD = "card.json", "card.md"
FER2013_LICENCE = ("FER2013 (Goodfellow et al., 2013; ICML 2013 Challenges in Representation Learning, via "
                   "Kaggle) is released for research use only. Models trained on it, these included, inherit that "
                   "restriction: use them for research, not in a commercial product, unless you hold other rights "
                   "to the data.")


class ZooData(BaseModel):
    """How the training data is prepared (``ferlab data prepare`` options; the source is ``--source``)."""

    model_config = ConfigDict(extra="forbid")

    protocol: str
    split: Literal["official", "stratified", "paper"] = "official"  # official: the source's own train/test
    seed: int = 0
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    licence: str = FER2013_LICENCE  # the training data's terms, printed in the card
    # FER+: relabel with the ten annotators' votes (``ferlab models build --ferplus FILE``); the majority label
    # is what is scored, the votes what a ``targets = "distribution"`` recipe fits.
    labels: Literal["original", "ferplus"] = "original"
    test_part: Literal["both", "public", "private"] = "both"  # FER+'s test set is FER2013's PrivateTest

    def record(self) -> dict:
        """The card's copy of this table. Fields added after the first models were built are left out at their
        defaults, so a model built before them rebuilds to the same card."""
        later = {"labels": "original", "test_part": "both"}
        return {k: v for k, v in self.model_dump().items() if not (k in later and v == later[k])}


class ZooDerive(BaseModel):
    """A model made from another zoo model by merging its classes into a coarser protocol's."""

    model_config = ConfigDict(extra="forbid")

    parent: str
    protocol: str


class ZooEnsemble(BaseModel):
    """A model that averages the probabilities of other specs' trained networks, each calibrated by one shared
    temperature (and each with the spec's test-time augmentation). The members are specs with a ``[run]``
    and the same ``[data]``: zoo models, or recipes in ``zoo/specs/members/`` that ship only inside one."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(min_length=2)


class ZooSpec(BaseModel):
    """One zoo model: what it is for, its data and one recipe: training, an ensemble, or a derivation."""

    model_config = ConfigDict(extra="forbid")

    name: str
    summary: str
    role: Literal["fast", "accurate"]
    default: bool = False
    default_file: FileKind = "litert-int8"
    files: list[FileKind] = ["litert", "litert-int8", "onnx"]  # the files built and shipped
    tta: Literal["none", "flip"] = "none"  # flip: the shipped graph averages each face with its mirror image
    data: ZooData | None = None
    run: dict | None = None  # a run config without ``data`` (``ferlab train``'s TOML: preset, [model], [train])
    derive: ZooDerive | None = None
    ensemble: ZooEnsemble | None = None

    @model_validator(mode="after")
    def _one_recipe(self) -> ZooSpec:
        if sum(part is not None for part in (self.run, self.derive, self.ensemble)) != 1:
            raise ValueError("give one of [run] (with [data]), [ensemble] or [derive]")
        if self.ensemble is not None and self.data is not None:
            raise ValueError("[ensemble] takes its data from its members: remove [data]")
        if self.run is not None and self.data is None:
            raise ValueError("[run] needs a [data] table")
        if self.run is not None and "data" in self.run:
            raise ValueError("[run] must not name data: the build prepares it from [data] and --source")
        if self.default_file not in self.files:
            raise ValueError(f"default_file {self.default_file!r} is not among files {self.files}; add it to files")
        if len(set(self.files)) != len(self.files):
            raise ValueError(f"files {self.files}: each kind once")
        return self


@dataclass(frozen=True)
class ZooModel:
    """A registered zoo model: its spec, where its files are, and its card once built."""

    spec: ZooSpec
    spec_file: Path
    folder: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def built(self) -> bool:
        return (self.folder / CARD_JSON).is_file() and all(self.file(kind).is_file() for kind in self.spec.files)

    def file(self, kind: str) -> Path:
        """The shipped file of ``kind`` (a key of :data:`ZOO_FILES` that the spec's ``files`` lists)."""
        if kind not in ZOO_FILES:
            raise FerlabError(f"--backend: zoo files are {', '.join(ZOO_FILES)}; got {kind!r}")
        if kind not in self.spec.files:
            raise FerlabError(f"--backend {kind}: zoo model {self.name} ships {', '.join(self.spec.files)} only (to keep "
                              f"the package small); choose one of those, or {self.build_hint(kind)}")
        return self.folder / ZOO_FILES[kind]

    def build_hint(self, kind: str) -> str:
        """How to make a file kind the zoo does not ship: build a copy of the spec that lists it into a folder
        of one's own (the installed zoo is left alone), with the options the card's command used."""
        rest = "--source path/to/fer2013 --work zoo-work"
        prefix = f"ferlab models build {self.name} "
        if self.built and str(self.card().get("command", "")).startswith(prefix):
            rest = self.card()["command"][len(prefix):]  # --ferplus, --weights: whatever the build needed
        files = "[" + ", ".join(f'"{k}"' for k in (*self.spec.files, kind)) + "]"
        return (f"build it: copy {self.spec_file} to my-zoo/{self.name}.toml, set files = {files} at its top, then run "
                f"`ferlab models build my-zoo/{self.name}.toml {rest} --out my-zoo`")

    def build_command(self) -> str:
        """The command that builds this model from its spec (what its card records)."""
        data = self.spec.data
        if data is None and self.spec.derive is not None and self.spec.derive.parent in MODELS:
            data = MODELS.get(self.spec.derive.parent).spec.data
        return build_command(self.name, labels=data.labels if data is not None else "original")

    def card(self) -> dict:
        self.require_built()
        return read_json(self.folder / CARD_JSON, "model card", fix="reinstall ferlab")

    def require_built(self) -> None:
        if not self.built:
            raise FerlabError(f"--model {self.name}: this zoo model is not built in this installation; build it with "
                              f"`{self.build_command()}` or choose one of "
                              f"{', '.join(m.name for m in built_models()) or '(none built)'}")

    def model_file(self, backend: str = "auto") -> Path:
        """The file to run: the card's default for ``auto``, else a kind of :data:`ZOO_FILES` the spec ships;
        ``litert`` / ``onnx`` take the spec's float32 file of that runtime, or its only one
        (``keras`` is not shipped: export from the training run for it)."""
        self.require_built()
        if backend == "auto":
            return self.file(self.spec.default_file)
        if backend == "keras":
            raise FerlabError(f"--backend keras: zoo model {self.name} ships no .keras file; use litert or onnx, "
                              f"or rebuild it with `ferlab models build {self.name}` and use its training run")
        if backend in ("litert", "onnx") and backend not in self.spec.files:
            of_runtime = [k for k in self.spec.files if FILE_EXPORTS[k][0] == backend]
            if of_runtime:
                return self.file(of_runtime[0])
        return self.file(backend)


def build_command(name: str, *, labels: str = "original", weights: str | None = None) -> str:
    """``ferlab models build NAME`` with the options its data needs (``--ferplus`` for FER+ labels)."""
    extra = f" --weights {Path(weights).name}" if weights else ""
    extra += " --ferplus path/to/fer2013_jpg_to_ferplus.csv" if labels == "ferplus" else ""
    return f"ferlab models build {name} --source path/to/fer2013 --work zoo-work{extra}"


def _package_dir(*parts: str) -> Path:
    return Path(str(resources.files("ferlab.zoo").joinpath(*parts)))


SPECS_DIR = _package_dir("specs")
MEMBERS_DIR = SPECS_DIR / "members"  # recipes trained only as ensemble members: not models of their own
MODELS_DIR = _package_dir("models")
MODELS: Registry[ZooModel] = Registry("zoo model", "--model")


def read_spec(path: str | os.PathLike) -> ZooSpec:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FerlabError(f"{path}: cannot read the zoo spec ({exc})") from None
    spec = validate(ZooSpec, raw, str(path))
    if spec.name != path.stem:
        raise FerlabError(f"{path}: name {spec.name!r} differs from the file name; name the file {spec.name}.toml")
    return spec


def _register_shipped() -> None:
    specs = [read_spec(path) for path in SPECS_DIR.glob("*.toml")]
    # The default first, then fast before accurate: the order of `ferlab models list`.
    for spec in sorted(specs, key=lambda s: (not s.default, s.role != "fast", s.name)):
        MODELS.register(spec.name, ZooModel(spec, SPECS_DIR / f"{spec.name}.toml", MODELS_DIR / spec.name))
    defaults = [m.name for m in MODELS if m.spec.default]
    if len(defaults) != 1:
        raise RuntimeError(f"the zoo needs exactly one default model, found {defaults}")


_register_shipped()


def list_models() -> list[str]:
    return list(MODELS.names())


def get_model(name: str) -> ZooModel:
    return MODELS.get(name)


def built_models() -> list[ZooModel]:
    return [m for m in MODELS if m.built]


def default_model() -> ZooModel:
    return next(m for m in MODELS if m.spec.default)


def resolve_model(model: str | os.PathLike | None, backend: str = "auto") -> Path:
    """``--model`` -> the model file or run directory to load.

    None: the default zoo model; an existing path (run directory or model file): itself, for ``backend``
    as :func:`ferlab.deploy.formats.resolve_model_file` takes it; otherwise a zoo model's name.
    """
    from ferlab.deploy.formats import model_file_words, resolve_model_file

    if model is None:
        return default_model().model_file(backend)
    if Path(model).exists():
        return resolve_model_file(model, backend)
    if str(model) in MODELS:
        return get_model(str(model)).model_file(backend)
    raise FerlabError(f"--model {model}: no such file or directory, and not a zoo model; give {model_file_words()}, "
                      f"or a zoo model: {MODELS.choices()} (ferlab models list)")


def export_zoo_file(name: str, fmt: str | None, quantize: str, out: str | os.PathLike | None,
                    overwrite: bool = False) -> Path:
    """``ferlab export NAME``: copy a zoo model's shipped file (and its sidecar and card) to ``out``.

    The zoo ships the files its specs list (``files``, among :data:`ZOO_FILES`); those are copied as they
    are (already exported, calibrated and tested). Any other needs the Keras model: rebuild with ``ferlab
    models build`` and export from its training run.
    """
    from ferlab.deploy.formats import default_export_format, sidecar_path
    from ferlab.io import atomic_write_bytes

    entry = get_model(name)
    entry.require_built()
    if fmt is None:  # as `ferlab export` does: from --out's suffix, else litert
        fmt = default_export_format(out)
    kind = {export: kind for kind, export in FILE_EXPORTS.items()}.get((fmt.lower(), quantize))
    if kind is None or kind not in entry.spec.files:
        shipped = ", ".join(f"{FILE_EXPORTS[k][0]} --quantize {FILE_EXPORTS[k][1]}" for k in entry.spec.files)
        if kind is None:  # not a file any zoo model is built as: only a run of one's own exports it
            zoo = ", ".join(f"{f} --quantize {q}" for f, q in FILE_EXPORTS.values())
            raise FerlabError(f"--format {fmt} --quantize {quantize}: zoo model {name} ships {shipped}, and zoo models "
                              f"are built as {zoo} only; choose one of those, or export a run you trained: "
                              f"`ferlab export RUN_DIR --format {fmt} --quantize {quantize}`")
        raise FerlabError(f"--format {fmt} --quantize {quantize}: zoo model {name} ships {shipped}; to get {kind}, "
                          f"{entry.build_hint(kind)}")
    source = entry.file(kind)
    out = Path(out) if out is not None else Path(source.name.replace("model", name, 1))
    if out.suffix.lower() != source.suffix:
        raise FerlabError(f"--out {out}: --format {fmt} writes a {source.suffix} file; give --out a {source.suffix} name")
    card_copy = out.with_name(out.name + ".card.md")
    existing = [p for p in (out, sidecar_path(out), card_copy) if p.exists()]
    if existing and not overwrite:
        raise FerlabError(f"--out {existing[0]}: already exists; choose another --out or pass --overwrite")
    atomic_write_bytes(sidecar_path(out), sidecar_path(source).read_bytes())
    atomic_write_bytes(card_copy, (entry.folder / CARD_MD).read_bytes())
    atomic_write_bytes(out, source.read_bytes())  # last: a model file always has its sidecar
    return out


__all__ = ["FILE_EXPORTS", "MODELS", "ZOO_FILES", "ZooEnsemble", "ZooModel", "ZooSpec", "build_command", "built_models", "default_model", "export_zoo_file", "get_model",
           "list_models", "read_spec", "resolve_model"]
