"""Run configuration: data + model + training recipe, with presets (the study's recipe is one)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ferlab.config import deep_merge, validate
from ferlab.errors import FerlabError
from ferlab.models import ModelConfig


class AugmentConfig(BaseModel):
    """Augmentation on the 48x48 faces (before the in-model resize). All off by default, as in the study."""

    model_config = ConfigDict(extra="forbid")

    flip: bool = False  # horizontal flip with probability 1/2
    shift: float = Field(0.0, ge=0, le=0.5)  # max translation, fraction of the side
    rotation: float = Field(0.0, ge=0, le=180)  # max rotation, degrees
    zoom: float = Field(0.0, ge=0, lt=1)  # max relative zoom in/out
    erasing: float = Field(0.0, ge=0, le=1)  # probability of erasing one random rectangle

    @property
    def enabled(self) -> bool:
        return self.flip or any(v > 0 for v in (self.shift, self.rotation, self.zoom, self.erasing))


class DistillConfig(BaseModel):
    """Knowledge distillation: the student fits a mix of the teacher's temperature-softened probabilities and
    its own targets (the label, or the vote distribution): ``weight * softmax(log(p_teacher) / T) + (1 -
    weight) * target``, by cross-entropy. That is Hinton et al.'s (2015) loss with the student's
    temperature held at 1, so the distilled model needs no temperature of its own at inference.

    ``cross_fit = K``: the teacher is a recipe (a zoo spec with a [run]) trained K times, each copy without
    one fold of the training faces, and each face's probabilities come from the copy that never trained on
    it (calibrated on the validation faces). A teacher that trained on a face mostly repeats its label there
    (accurate-fer7 gets 81.5% of its training faces right against 69.5% of the test faces), so its
    probabilities teach the student little beyond the label; out-of-fold probabilities are the ones it would
    give an unseen face."""

    model_config = ConfigDict(extra="forbid")

    teacher: str  # a zoo model, a model file or run directory; with cross_fit, a zoo spec (name or .toml)
    weight: float = Field(0.5, gt=0, le=1)  # the teacher's share of the target
    temperature: float = Field(2.0, gt=0)
    cross_fit: int | None = Field(None, ge=2, le=10)  # folds; None: the teacher's own file answers every face


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # What the loss fits: each face's majority label, or its annotators' label distribution (data prepared
    # with FER+ votes; cross-entropy against the distribution, FER+'s "probability" mode). Validation,
    # model selection and every reported metric stay on the majority label.
    targets: Literal["majority", "distribution"] = "majority"
    distill: DistillConfig | None = None
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    early_stopping_patience: int | None = Field(None, ge=1)  # epochs without a better val accuracy
    select_best: bool = True  # evaluate the epoch with the best *validation* accuracy (never test)
    mixed_precision: bool = False  # float16 compute; only worth it on a GPU
    jit_compile: bool | Literal["auto"] = "auto"  # XLA: on for GPUs, off on CPUs (3-6x slower there)
    deterministic: bool = False  # TF op determinism (slower; makes reruns and resumes bit-identical)
    seed: int = 0
    tensorboard: bool = True
    latency_runs: int = Field(20, ge=0)  # single-face latency samples after training, median kept (0 = skip)


class RunConfig(BaseModel):
    """One training run. ``data`` is a prepared data directory (``ferlab data prepare``)."""

    model_config = ConfigDict(extra="forbid")

    data: str
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    preset: str | None = None


# The study's recipe: Adam, sparse categorical cross-entropy, 50 epochs, 224 px, every layer fine-tuned,
# its uniform /255 input scaling, no augmentation, last epoch evaluated. ``better`` is the recipe
# measured to fine-tune ImageNet backbones well on FER at small sizes (see README: training).
PRESETS: dict[str, dict] = {
    "paper": {
        "model": {"input_size": 224, "mode": "finetune", "weights": "imagenet", "preprocessing": "paper"},
        "train": {"epochs": 50, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3,
                  "schedule": "constant", "select_best": False},
    },
    "better": {
        "model": {"mode": "finetune", "dropout": 0.3, "bn_momentum": 0.9},
        "train": {"epochs": 15, "batch_size": 64, "optimizer": "adamw", "learning_rate": 5e-4, "weight_decay": 0.05,
                  "schedule": "cosine", "warmup_epochs": 1, "label_smoothing": 0.1,
                  "augment": {"flip": True, "shift": 0.1, "rotation": 10, "zoom": 0.1}},
    },
}


def recorded_config(recorded: dict) -> dict:
    """A run's config.json, written by this or an earlier ferlab, in today's form: a field added since then
    takes its default, which is what earlier versions did (e.g. ``train.targets = "majority"``). So a run or
    a study begun before an upgrade resumes after it; a config that no longer validates is returned as it
    is (and then differs from any config of today)."""
    try:
        return RunConfig.model_validate(recorded).model_dump(mode="json")
    except Exception:  # noqa: BLE001 - an unreadable record is simply not today's config
        return recorded


def resolve_run_config(raw: dict, where: str = "config") -> RunConfig:
    """Apply a preset (if named) under the given values and validate."""
    preset = raw.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise FerlabError(f"{where}: preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        raw = deep_merge(PRESETS[preset], raw)
    return validate(RunConfig, raw, where)
