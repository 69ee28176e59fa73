"""Reading typed configs from TOML: one error line naming the file and the key at fault."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ferlab.errors import FerlabError

M = TypeVar("M", bound=BaseModel)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(value: Any) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed TOML tree."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: expand_vars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v) for v in value]
    return value


def read_toml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FerlabError(f"{path}: config file not found")
    try:
        return expand_vars(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FerlabError(f"{path}: not valid TOML ({exc})") from None


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``, merging nested tables."""
    out = dict(base)
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def validate(model: type[M], raw: dict, where: str) -> M:
    """Build ``model`` from ``raw``; a validation error becomes one line naming ``where`` and the key."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise FerlabError(f"{where}: {key}: {msg}") from None


def first_difference(recorded: object, expected: object, says: str = "the spec says", key: str = "") -> str | None:
    """``"train.epochs = 20 (the spec says 15)"`` for the first key (in sorted order) where a recorded config
    differs from the expected one, or None when they are equal: one line that tells the user what to fix."""
    if isinstance(recorded, dict) and isinstance(expected, dict):
        for k in sorted(set(recorded) | set(expected)):
            diff = first_difference(recorded.get(k), expected.get(k), says, f"{key}.{k}" if key else k)
            if diff is not None:
                return diff
        return None
    return None if recorded == expected else f"{key} = {recorded!r} ({says} {expected!r})"
