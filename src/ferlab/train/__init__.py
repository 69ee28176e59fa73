"""Training: configs and presets, the lean input pipeline, resumable fitting, the frozen fast path.

:mod:`ferlab.train.config` is plain pydantic (a config check never waits for TensorFlow); the modules that
train import TensorFlow through :mod:`ferlab.backend`, quietly.
"""
