"""Reading a saved ferlab model (``.keras``) back: the one place that loads one, with one-line errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

import ferlab.models.layers  # noqa: F401  (registers ferlab's layers, which loading needs)
from ferlab.errors import FerlabError


TRAIN_AGAIN = "give a model.keras saved by ferlab (keras 3), or train the run again"


def load_model(path: str | os.PathLike, what: str = "model", fix: str = TRAIN_AGAIN) -> keras.Model:
    """A ``.keras`` model saved by ferlab, loaded in Keras's safe mode.

    Keras reports a corrupt archive as "File not found" and a model with unsafe layers (a ``Lambda``) as a
    long ValueError; both become one line naming the file, ``what`` it is and ``fix``.
    """
    path = Path(path)
    if not path.is_file():
        raise FerlabError(f"{path}: {what} not found; {fix}")
    if not zipfile.is_zipfile(path):
        raise FerlabError(f"{path}: not a Keras model file (not a .keras zip archive; empty, corrupt or another "
                          f"format); {fix}")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001  (Keras raises many types; the user needs one line)
        text = " ".join(str(exc).split())
        if "safe_mode" in text or "Lambda" in text:
            raise FerlabError(f"{path}: Keras refuses to load it in safe mode (it holds code, e.g. a Lambda layer); "
                              f"ferlab models never do: load only models you trust, or re-save it without that "
                              f"layer") from None
        raise FerlabError(f"{path}: Keras cannot load it as a {what} ({text[:200]}); {fix}") from None
