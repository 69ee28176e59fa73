"""Silencing what native libraries (TensorFlow, LiteRT, libpng) print on file descriptor 2.

C++ logging writes to fd 2 directly, past Python's ``sys.stderr``, so it would bury ferlab's one-line
errors. This module imports nothing heavy: the LiteRT runtime uses it without importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


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
