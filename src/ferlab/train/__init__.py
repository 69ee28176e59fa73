"""Training: configs and presets, the lean input pipeline, resumable fitting, the frozen fast path."""

import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before any submodule needs it)
