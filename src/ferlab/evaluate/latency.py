"""Single-face latency: the one timing loop behind every latency ferlab reports.

A run's ``metrics.json`` (Keras), an export's ``FILE.parity.json`` (LiteRT / ONNX Runtime and Keras) and
the benchmarks all call :func:`median_latency_ms` with the same warm-up and run counts, so their numbers
are comparable. A Keras model is timed through ``predict_on_batch``: for one image it is ~15x faster than
calling ``model(x)`` eagerly (measured: ~4 ms vs ~57 ms for MobileNetV2 at 48 px), and it is what a
real-time Keras loop would use.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ferlab.face import random_faces

LATENCY_RUNS = 20
LATENCY_WARMUP = 5


def machine_description() -> str:
    """'<CPU model name>, <N> cores': the machine a latency came from, beside every number that cites one."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def median_latency_ms(call: Callable[[np.ndarray], object], batch: int = 1, runs: int = LATENCY_RUNS,
                      warmup: int = LATENCY_WARMUP) -> float:
    """Median milliseconds of ``call(faces)`` on ``batch`` random float32 faces, after ``warmup`` calls."""
    x = random_faces(batch)
    for _ in range(warmup):
        call(x)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def keras_latency_ms(model, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds for ``model.predict_on_batch`` on one face."""
    return median_latency_ms(model.predict_on_batch, runs=runs)
