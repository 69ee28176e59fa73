"""The kinds of data source, one :data:`SOURCES` registry entry each: how ``--source`` is recognised and which
loader reads it (:mod:`ferlab.data.sources`). ``--source`` is matched against the entries in order. This
module imports no loader (pandas, Pillow, OpenCV): the command line reads it at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ferlab.errors import FerlabError
from ferlab.registry import Registry

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class SourceKind:
    """A kind of data source: how to recognise it from the ``--source`` value, and how to load it."""

    name: str
    summary: str  # for --help and errors
    matches: Callable[[str, Path], bool]  # (the --source text, it as a path) -> is it this kind?
    load: Callable  # (text, path, skip_bad=, synthetic_per_class=, seed=, progress=) -> FaceSet
    needs_path: bool = True  # False: a name, not a file (the embedded synthetic set)


SOURCES: Registry[SourceKind] = Registry("source", "--source")


def register_source(kind: SourceKind) -> SourceKind:
    return SOURCES.register(kind.name, kind)


def sources_help() -> str:
    """'a, b or c': every source kind's summary, for --help and errors."""
    words = [k.summary for k in SOURCES]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def load_source(source: str | os.PathLike | None, *, skip_bad: bool = False, synthetic_per_class: int | None = None,
                seed: int = 0, progress: Progress | None = None):
    """Load a source by name or path, through the first :data:`SOURCES` entry that recognises it."""
    text = "synthetic" if source is None else str(source)
    path = Path(text)
    if not path.exists() and not any(not k.needs_path and k.matches(text, path) for k in SOURCES):
        raise FerlabError(f"{path}: no such file or directory; give {sources_help()}")
    kind = next((k for k in SOURCES if k.matches(text, path)), None)
    if kind is None:
        raise FerlabError(f"{path}: not a kind of source ferlab reads; give {sources_help()}")
    return kind.load(text, path, skip_bad=skip_bad, synthetic_per_class=synthetic_per_class, seed=seed,
                     progress=progress)


def _synthetic(text, path, *, synthetic_per_class=None, seed=0, **_):
    from ferlab.data.synthetic import load_synthetic

    return load_synthetic(seed=seed, **({"per_class": synthetic_per_class} if synthetic_per_class else {}))


def _folder(text, path, *, skip_bad=False, progress=None, **_):
    from ferlab.data.sources import load_image_folder

    return load_image_folder(path, skip_bad=skip_bad, progress=progress)


def _fer2013_csv(text, path, **_):
    from ferlab.data.sources import load_fer2013_csv

    return load_fer2013_csv(path)


register_source(SourceKind("synthetic", "'synthetic' (the embedded synthetic faces)",
                           lambda text, path: text == "synthetic", _synthetic, needs_path=False))
register_source(SourceKind("folder", "an image folder (<root>/<class>/* or <root>/<split>/<class>/*)",
                           lambda text, path: path.is_dir(), _folder))
register_source(SourceKind("fer2013-csv", "a fer2013.csv / icml_face_data.csv",
                           lambda text, path: path.is_file() and path.suffix.lower() == ".csv", _fer2013_csv))
