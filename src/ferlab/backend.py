"""Import TensorFlow without its start-up chatter.

TensorFlow 2.21 writes absl/oneDNN/CPU-feature lines to stderr while it is imported, before any log-level
setting takes effect (TF_CPP_MIN_LOG_LEVEL no longer silences them), which would bury ferlab's one-line
errors. stderr is pointed at /dev/null for the import alone; set FERLAB_TF_VERBOSE=1 to see the lines.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null (C++ logging ignores Python's sys.stderr); FERLAB_TF_VERBOSE=1 keeps it."""
    if os.environ.get("FERLAB_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import tensorflow  # noqa: F401


_import_quietly()
