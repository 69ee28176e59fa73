"""Class-name aliases: folder names and label spellings found in FER data sets -> canonical names."""

from __future__ import annotations

from ferlab.data.faceset import CANONICAL_LABELS

# Spellings seen in CK+, JAFFE, RAF-DB, AffectNet exports, FER+ and users' own folders. RAF-DB's basic
# set uses 1-7 (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral); JAFFE uses
# two-letter codes. Numeric names are deliberately not mapped: they differ between data sets.
_ALIASES: dict[str, tuple[str, ...]] = {
    "angry": ("anger", "angry", "mad", "an", "ang"),
    "disgust": ("disgust", "disgusted", "disgusting", "di", "dis"),
    "fear": ("fear", "fearful", "afraid", "scared", "fe"),
    "happy": ("happy", "happiness", "joy", "joyful", "smile", "smiling", "ha", "hap"),
    "sad": ("sad", "sadness", "unhappy", "sa"),
    "surprise": ("surprise", "surprised", "su", "sur"),
    "neutral": ("neutral", "calm", "ne", "neu"),
    "contempt": ("contempt", "contemptuous", "co"),
}
ALIASES: dict[str, str] = {alias: name for name, spellings in _ALIASES.items() for alias in spellings}
assert set(ALIASES.values()) == set(CANONICAL_LABELS)


def canonical_label(name: str) -> str | None:
    """The canonical class name for a folder or label spelling, or None if it is not recognised."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = key.split("_", 1)[1] if key[:1].isdigit() and "_" in key else key  # "0_angry" -> "angry"
    return ALIASES.get(key)
