"""Protocols: how a source's original labels map onto the classes a model is trained on.

Built in: ``fer7`` (FER2013's seven classes), ``paper5`` (the study's five: disgust dropped,
fear+surprise merged into "anxious"), ``ferplus8`` (the eight FER+ classes). A user-defined protocol is
a TOML file::

    name = "valence3"
    classes = ["negative", "neutral", "positive"]
    [map]                       # original label -> class; "" drops the label
    angry = "negative"
    sad = "negative"
    ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferlab.config import read_toml, validate
from ferlab.data.faceset import CANONICAL_LABELS, FER2013_CLASSES
from ferlab.errors import FerlabError


class Protocol(BaseModel):
    """Classes (in label-id order) and the mapping from canonical original labels to them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    classes: Annotated[tuple[str, ...], Field(min_length=2)]
    map: dict[str, str]  # original label -> class name, or "" to drop

    @model_validator(mode="after")
    def _check(self) -> "Protocol":
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        for original, target in self.map.items():
            if original not in CANONICAL_LABELS:
                raise ValueError(f"map: unknown original label {original!r}; known: {', '.join(CANONICAL_LABELS)}")
            if target and target not in self.classes:
                raise ValueError(f"map: {original!r} -> {target!r}, which is not one of classes {list(self.classes)}")
        return self

    def class_of(self, original: str) -> str | None:
        """Target class for an original label; None if the protocol drops it."""
        if original not in self.map:
            raise FerlabError(
                f"protocol {self.name!r} has no entry for label {original!r}; add it to the protocol's [map] "
                f"(\"\" to drop it)"
            )
        return self.map[original] or None


_IDENTITY7 = {c: c for c in FER2013_CLASSES}
BUILTIN: dict[str, Protocol] = {
    "fer7": Protocol(
        name="fer7",
        classes=FER2013_CLASSES,
        map={**_IDENTITY7, "contempt": ""},
    ),
    "paper5": Protocol(
        name="paper5",
        classes=("angry", "anxious", "happy", "neutral", "sad"),
        map={"angry": "angry", "disgust": "", "fear": "anxious", "surprise": "anxious", "happy": "happy",
             "neutral": "neutral", "sad": "sad", "contempt": ""},
    ),
    "ferplus8": Protocol(
        name="ferplus8",
        classes=("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"),
        map={**_IDENTITY7, "contempt": "contempt"},
    ),
}


def get_protocol(name_or_path: str | Path) -> Protocol:
    """A built-in protocol by name, or a user-defined one from a TOML file."""
    key = str(name_or_path)
    if key in BUILTIN:
        return BUILTIN[key]
    path = Path(key)
    if path.suffix.lower() != ".toml":
        raise FerlabError(f"unknown protocol {key!r}; choose one of {', '.join(BUILTIN)} or give a .toml protocol file")
    if not path.is_file():
        raise FerlabError(f"{path}: protocol file not found")
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    return validate(Protocol, raw, str(path))
