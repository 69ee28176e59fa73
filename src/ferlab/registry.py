"""Named choices kept in one list each: poolings, face detectors, export formats, data sources.

The command line's choices and help, the report's columns and the tests' parametrisation all read a
registry, so adding a choice is one ``register`` call beside its implementation. (timm's
``register_model``/``list_models`` idea, kept deliberately tiny: a dict with one-line errors.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from ferlab.errors import FerlabError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> entry table; ``what`` and ``option`` word its errors (``--pooling: unknown ...``)."""

    def __init__(self, what: str, option: str):
        self.what, self.option = what, option
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        key = name.lower()
        if key in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[key] = entry
        return entry

    def get(self, name: str) -> T:
        entry = self._entries.get(str(name).lower())
        if entry is None:
            raise FerlabError(f"{self.option}: unknown {self.what} {name!r}; choose {self.choices()}")
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def choices(self, conjunction: str = "or") -> str:
        """``'a, b or c'``: the names for a message or a help text."""
        names = list(self._entries)
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return str(name).lower() in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
