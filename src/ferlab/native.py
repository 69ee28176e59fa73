"""Silencing what native libraries (TensorFlow, LiteRT, libpng) print on file descriptor 2.

C++ logging writes to fd 2 directly, past Python's ``sys.stderr``, so it would bury ferlab's one-line
errors. This module imports nothing heavy: the LiteRT runtime uses it without importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

# fd 2 belongs to the whole process: threads that silence it at the same time (the web app's workers each
# building a detector) share one redirection, made by the first and undone by the last, so that no thread
# "restores" the /dev/null another one put there.
_lock = threading.Lock()
_users = 0
_saved: int | None = None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null (C++ logging ignores Python's sys.stderr); FERLAB_TF_VERBOSE=1 keeps it."""
    global _users, _saved
    if os.environ.get("FERLAB_TF_VERBOSE"):
        yield
        return
    with _lock:
        if _users == 0:
            sys.stderr.flush()
            _saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                sys.stderr.flush()
                os.dup2(_saved, 2)
                os.close(_saved)
                _saved = None
