"""Evaluate a trained run on another prepared data set (cross-data-set checks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferlab.data.prepare import PreparedData
from ferlab.errors import FerlabError
from ferlab.evaluate.tta import TTA_CHOICES, mirrored
from ferlab.io import atomic_write_json
from ferlab.rundir import RunDir



def evaluate_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike, split: str = "test",
                 tta: str = "none") -> dict:
    """Metrics of ``run_dir``'s model on ``split`` of another prepared data set; also saved in the run dir.

    The data set must use the same class names (in any order): predictions are mapped by name.
    ``tta="flip"`` averages the probabilities of each face and its mirror image (test-time augmentation:
    faces are left-right symmetric in expression, and training used flips).
    """
    if tta not in TTA_CHOICES:
        raise FerlabError(f"--tta: unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_CHOICES)}")
    from ferlab.evaluate.metrics import classification_metrics
    from ferlab.models import load_model
    from ferlab.train.data import eval_dataset

    run = RunDir(run_dir)
    run_classes = run.classes()
    data = PreparedData(Path(data_dir))
    missing = [c for c in data.classes if c not in run_classes]
    if missing:
        raise FerlabError(f"{data.path}: classes {missing} are not among the model's {run_classes}; prepare it with the same protocol")
    x, y = data.arrays(split)
    if len(x) == 0:
        raise FerlabError(f"{data.path}: split {split!r} is empty")
    model = load_model(run.model_file)
    probs = np.asarray(model.predict(eval_dataset(x), verbose=0), np.float64)
    if tta == "flip":
        probs = (probs + np.asarray(model.predict(eval_dataset(mirrored(x)), verbose=0), np.float64)) / 2.0
    # Keep the data set's classes, in its order; renormalise over them.
    probs = probs[:, [run_classes.index(c) for c in data.classes]]
    probs /= np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    result = {"run": str(run.path), "data": {"path": str(data.path), "fingerprint": data.fingerprint,
                                            "source": data.meta["source"]["name"], "split": split},
              "tta": tta,
              **classification_metrics(y, probs, list(data.classes))}
    suffix = "" if tta == "none" else f"-tta-{tta}"
    atomic_write_json(run.evaluations_dir / f"{data.fingerprint}-{split}{suffix}.json", result)
    return result
