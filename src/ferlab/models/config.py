"""ModelConfig: everything that decides a model's architecture and initial weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferlab.errors import FerlabError
from ferlab.models.backbones import get_backbone, list_backbones
from ferlab.models.pooling import POOLINGS, list_poolings


class ModelConfig(BaseModel):
    """A model: backbone x pooling x head, its input handling, initial weights and what trains.

    - ``backbone``: a registry name (case-insensitive), see :func:`ferlab.models.list_backbones`.
    - ``pooling``: how the final feature map becomes a vector (``none`` flattens it); a name from
      :data:`ferlab.models.pooling.POOLINGS`.
    - ``pooling_scope``: ``head`` pools only the final map; ``all`` also replaces every pooling layer inside
      the backbone by the same kind (same window, strides, padding), as the study did. ``all`` needs a
      shape-keeping kind (``avg``, ``max``, ``min``): an internal pooling layer must keep the map's shape,
      which ``none`` (flatten) and ``avgmax`` (doubles the channels) cannot.
    - ``input_size``: the side the 48x48 faces are resized to in the graph; defaults to the backbone's
      (224 for the ImageNet backbones, as in the study; 48 for fercnn).
    - ``weights``: ``imagenet`` (Keras download/cache), ``none`` (random init) or a ``.weights.h5`` file
      of the bare backbone (``include_top=False`` layout). Default ``none``: works offline and for fercnn.
    - ``mode``: ``finetune`` (all trainable), ``frozen`` (backbone fixed, BatchNorm in inference mode) or
      ``partial`` (the top ``trainable_blocks`` blocks train; every BatchNorm stays frozen).
    - ``preprocessing``: ``native`` (the family's own normalisation) or ``paper`` (the study's x/255).
    - ``bn_momentum``: overrides the backbone's BatchNorm momentum (Keras ships 0.99-0.999, which lags when
      fine-tuning on a few thousand faces).
    """

    model_config = ConfigDict(extra="forbid")

    backbone: str
    pooling: str = "avg"
    pooling_scope: Literal["head", "all"] = "head"
    input_size: int | None = None
    num_classes: int = Field(7, ge=2)
    weights: str = "none"
    mode: Literal["finetune", "frozen", "partial"] = "finetune"
    trainable_blocks: int = Field(2, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    preprocessing: Literal["native", "paper"] = "native"
    bn_momentum: float | None = Field(None, gt=0, lt=1)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value.lower() not in list_backbones():
            raise ValueError(f"unknown backbone {value!r}; choose one of {', '.join(list_backbones())}")
        return value.lower()

    @field_validator("pooling")
    @classmethod
    def _known_pooling(cls, value: str) -> str:
        if value.lower() not in POOLINGS:
            raise ValueError(f"unknown pooling {value!r}; choose {POOLINGS.choices()}")
        return value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        spec = get_backbone(self.backbone)
        if self.input_size is None:
            self.input_size = spec.default_input_size
        if self.input_size < spec.min_input_size:
            raise ValueError(f"input_size {self.input_size} is too small for {spec.name}: "
                             f"use input_size >= {spec.min_input_size}")
        if self.pooling_scope == "all" and self.pooling not in list_poolings(local=True):
            raise ValueError(f"pooling_scope 'all' needs pooling in {', '.join(list_poolings(local=True))} "
                             f"(got {self.pooling!r}); use pooling_scope 'head' for it")
        if self.weights == "imagenet" and spec.imagenet_file is None:
            raise ValueError(f"{spec.name} has no ImageNet weights; use weights 'none' or a .weights.h5 path")
        if self.weights not in ("imagenet", "none") and not self.weights.endswith(".weights.h5"):
            raise ValueError(f"weights {self.weights!r}: use 'imagenet', 'none' or a path to a .weights.h5 file")
        return self


def as_model_config(config: ModelConfig | dict) -> ModelConfig:
    """A validated ModelConfig from a config or a plain dict; invalid input -> one-line FerlabError."""
    if isinstance(config, ModelConfig):
        return config
    from ferlab.config import validate

    if not isinstance(config, dict):
        raise FerlabError(f"model: expected a ModelConfig or a dict, got {type(config).__name__}")
    return validate(ModelConfig, config, "model")
