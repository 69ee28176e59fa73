"""Import TensorFlow without its start-up chatter.

TensorFlow 2.21 writes absl/oneDNN/CPU-feature/CUDA lines to stderr while it is imported and first used, before any log-level
setting takes effect (TF_CPP_MIN_LOG_LEVEL no longer silences them), which would bury ferlab's one-line
errors. stderr is pointed at /dev/null for the import alone (:func:`ferlab.native.native_stderr_silenced`);
set FERLAB_TF_VERBOSE=1 to see the lines.
"""

from __future__ import annotations

import os
import sys

from ferlab.native import native_stderr_silenced

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import tensorflow as tf

        # The full TensorFlow wheel looks for CUDA when its devices are first listed, and on a machine
        # without a GPU it reports "failed call to cuInit" on stderr: list them here, silenced.
        tf.config.list_physical_devices("GPU")


_import_quietly()
