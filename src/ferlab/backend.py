"""Import TensorFlow without its start-up chatter.

TensorFlow 2.21 writes absl/oneDNN/CPU-feature lines to stderr while it is imported, before any log-level
setting takes effect (TF_CPP_MIN_LOG_LEVEL no longer silences them), which would bury ferlab's one-line
errors. stderr is pointed at /dev/null for the import alone; set FERLAB_TF_VERBOSE=1 to see the lines.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("FERLAB_TF_VERBOSE"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_quietly()
