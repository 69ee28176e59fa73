"""Study specs: a grid of backbones x poolings x seeds x input sizes x modes over one data set.

A spec is a TOML file (or a shipped name, :data:`SHIPPED`)::

    name = "my-study"
    preset = "better"                  # optional training preset (see ferlab.train.config.PRESETS)
    [data]                             # a PrepareConfig table, or: data = "path/to/prepared"
    source = "../shared/data/fer2013"
    protocol = "paper5"
    [grid]
    backbones = ["mobilenetv2", "resnet50"]
    poolings = ["none", "min", "avg", "max"]
    seeds = [0, 1, 2]
    input_sizes = [96]
    modes = ["frozen"]
    [model]                            # ModelConfig fields shared by every trial
    weights = "imagenet"
    [train]                            # TrainConfig fields shared by every trial
    epochs = 10
    [overrides.resnet50.model]         # per-backbone changes
    weights = "none"
    [resources]                        # what one trial asks of a worker (the Ray executor)
    cpus = 1
    gpus = 0
    memory_gb = 8

Strings may use ``${VAR}`` or ``${VAR:-default}`` environment variables.
"""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ferlab.config import deep_merge, read_toml, validate
from ferlab.data.prepare import PrepareConfig
from ferlab.errors import FerlabError
from ferlab.train.config import RunConfig, resolve_run_config

SHIPPED = ("quickstart", "paper", "paper-cpu", "pooling-finetune", "pooling-finetune-naive")


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backbones: Annotated[list[str], Field(min_length=1)]
    poolings: Annotated[list[str], Field(min_length=1)]
    seeds: Annotated[list[int], Field(min_length=1)] = [0]
    input_sizes: Annotated[list[int], Field(min_length=1)] | None = None  # None: each backbone's default
    modes: Annotated[list[str], Field(min_length=1)] = ["finetune"]
    preprocessings: Annotated[list[str], Field(min_length=1)] = ["native"]

    @field_validator("backbones", "poolings", "modes", "preprocessings")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [s.lower() for s in v]


class Resources(BaseModel):
    """What one trial asks of its worker. Only the Ray executor schedules by it; results do not depend on it."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0)
    gpus: float = Field(0.0, ge=0)
    memory_gb: float | None = Field(None, gt=0)


class StudySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    preset: str | None = None
    data: PrepareConfig | str
    grid: Grid
    model: dict = Field(default_factory=dict)
    train: dict = Field(default_factory=dict)
    overrides: dict[str, dict] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)

    def identity(self) -> dict:
        """What makes two runs the same study (study.json): everything but where and how trials are scheduled."""
        return self.model_dump(mode="json", exclude={"resources"})


class Trial(BaseModel):
    trial_id: str
    backbone: str
    pooling: str
    mode: str
    input_size: int
    seed: int
    preprocessing: str
    config: RunConfig


def load_spec(name_or_path: str | Path) -> StudySpec:
    """A shipped spec by name, or a spec file."""
    key = str(name_or_path)
    if key in SHIPPED:
        where = f"spec {key}"
        text = resources.files("ferlab.study").joinpath("specs", f"{key}.toml")
        with resources.as_file(text) as path:
            raw = read_toml(path)
    else:
        path = Path(key)
        if path.suffix.lower() != ".toml" and not path.exists():
            raise FerlabError(f"unknown spec {key!r}; choose one of {', '.join(SHIPPED)} or give a .toml file")
        where, raw = str(path), read_toml(path)
    spec = validate(StudySpec, raw, where)
    expand_trials(spec, "prepared", where)  # validate every trial's config now, before any training
    return spec


def expand_trials(spec: StudySpec, data_path: str, where: str = "spec") -> list[Trial]:
    """Every trial of the grid as a resolved RunConfig, in grid order (backbone-major)."""
    from ferlab.models import list_backbones

    known = list_backbones()
    for b in spec.grid.backbones:
        if b not in known:
            raise FerlabError(f"{where}: grid.backbones: unknown backbone {b!r}; choose from {', '.join(known)}")
    for b in spec.overrides:
        if b.lower() not in spec.grid.backbones:
            raise FerlabError(f"{where}: overrides.{b}: not one of grid.backbones")
    trials = []
    sizes = spec.grid.input_sizes or [None]
    for backbone, size, mode, pre, pooling, seed in itertools.product(
            spec.grid.backbones, sizes, spec.grid.modes, spec.grid.preprocessings, spec.grid.poolings, spec.grid.seeds):
        raw = {"data": data_path, "model": {**spec.model, "backbone": backbone, "pooling": pooling, "mode": mode,
                                            "preprocessing": pre}, "train": {**spec.train, "seed": seed}}
        if size is not None:
            raw["model"]["input_size"] = size
        if spec.preset:
            raw["preset"] = spec.preset
        # Per-backbone overrides win over the grid (e.g. one backbone frozen at its own input size).
        raw = deep_merge(raw, {k.lower(): v for k, v in spec.overrides.items()}.get(backbone, {}))
        cfg = resolve_run_config(raw, where)
        m = cfg.model
        trial_id = f"{backbone}-{pooling}-{m.mode}-{m.input_size}px-s{seed}"
        if m.preprocessing != "native":
            trial_id += f"-{m.preprocessing}pre"
        if m.pooling_scope != "head":
            trial_id += f"-{m.pooling_scope}"
        trials.append(Trial(trial_id=trial_id, backbone=backbone, pooling=pooling, mode=m.mode,
                            input_size=m.input_size, seed=seed, preprocessing=m.preprocessing, config=cfg))
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):
        raise FerlabError(f"{where}: grid has duplicate trials (e.g. {next(i for i in ids if ids.count(i) > 1)}); remove repeated values")
    return trials
