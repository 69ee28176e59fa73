"""Training step time of two backbones, to compare TensorFlow builds: run it with each environment's python.

One ``train_on_batch`` of 64 random 48x48 faces (fercnn at 48 px, MobileNetV2 at 96 px, random init),
3 warm-up steps, then the mean of 15 steps in ms. Alternate the environments in one session (the machine's
load drifts) and compare the ratios, e.g.::

    for r in 1 2 3; do
        PYTHONPATH=src .venv/bin/python -m bench tf-step
        PYTHONPATH=src /path/to/other-venv/bin/python -m bench tf-step
    done
"""

from __future__ import annotations

import sys
import time

import numpy as np

STEPS, WARMUP, BATCH = 15, 3, 64
PLAN = (("fercnn", 48), ("mobilenetv2", 96))


def main(argv: list[str]) -> None:
    from importlib import metadata

    import tensorflow as tf

    import ferlab.models  # noqa: F401  (quiet TensorFlow import)
    from ferlab.models import ModelConfig, build_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (BATCH, 48, 48, 1)).astype(np.float32)
    y = rng.integers(0, 5, BATCH)
    times = {}
    for backbone, size in PLAN:
        model = build_model(ModelConfig(backbone=backbone, pooling="avg", input_size=size, num_classes=5, weights="none"))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        for _ in range(WARMUP):
            model.train_on_batch(x, y)
        start = time.perf_counter()
        for _ in range(STEPS):
            model.train_on_batch(x, y)
        times[backbone] = round((time.perf_counter() - start) / STEPS * 1e3, 1)
    wheel = next((d for d in ("tensorflow-cpu", "tensorflow") if _has(metadata, d)), "?")
    print(f"{wheel} {tf.__version__}: ms per training step of {BATCH}: {times}")


def _has(metadata, name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main(sys.argv[1:])
