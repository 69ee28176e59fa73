"""Test-set metrics of one trial, and the small statistics used to aggregate trials across seeds.

Everything returned is plain Python (``float``/``int``/lists) so it can go straight into ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

# Keras clips probabilities at its backend epsilon before the log; using the same value makes our test loss
# comparable with the ``loss`` Keras reports during training.
PROB_EPSILON = 1e-7


def bootstrap_accuracy_ci(y_true: np.ndarray, y_pred: np.ndarray, n: int = 1000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, float]:
    """Percentile-bootstrap ``1 - alpha`` confidence interval of accuracy, resampling test images.

    ``y_pred`` is ``(n_images,)`` for one model, or ``(n_models, n_images)`` for several runs of one
    configuration (seeds) on the same test set: then the interval is for their *mean* accuracy, and every
    bootstrap replicate resamples the same images for all runs, so the interval reflects test-set sampling
    and not seed-to-seed spread (report that separately, e.g. with :func:`mean_std`). Because the mean over
    runs commutes with the mean over resampled images, one per-image mean of correctness is resampled, which
    keeps memory at ``n x n_images`` whatever the number of runs.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.size == 0:
        raise ValueError("y_true must be a non-empty 1-D array")
    if y_pred.shape[-1] != y_true.size or y_pred.ndim not in (1, 2):
        raise ValueError(f"y_pred must have shape ({y_true.size},) or (runs, {y_true.size}); got {y_pred.shape}")
    if n < 1 or not 0 < alpha < 1:
        raise ValueError("need n >= 1 and 0 < alpha < 1")
    correct = np.atleast_2d(y_pred == y_true).mean(axis=0)  # per-image share of runs that got it right
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, correct.size, size=(n, correct.size), dtype=np.int32)
    replicates = correct[idx].mean(axis=1)
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def classification_metrics(y_true: Sequence[int] | np.ndarray, probs: np.ndarray, classes: Sequence[str], *,
                           n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy, cross-entropy, bootstrap CI, per-class and averaged precision/recall/F1, and confusion.

    ``probs`` is the ``(n_images, n_classes)`` softmax output; predictions are its argmax. The loss is the
    mean sparse categorical cross-entropy with probabilities clipped to ``[1e-7, 1]`` (as Keras does), so a
    confidently wrong image costs at most ``-log(1e-7) ~ 16.1`` instead of infinity. Precision/recall/F1 use
    ``zero_division=0`` so a class that is never predicted scores 0 rather than raising a warning. Every
    class in ``classes`` appears in the output even when absent from ``y_true``. ``n_bootstrap=0`` skips the
    CI (``accuracy_ci95`` is then None), for splits where nobody reads it (train, validation).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    if probs.ndim != 2 or probs.shape != (y_true.size, k):
        raise ValueError(f"probs must have shape ({y_true.size}, {k}); got {probs.shape}")
    if y_true.size == 0 or y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"y_true must be non-empty class ids in [0, {k})")
    y_pred = probs.argmax(axis=1)
    labels = np.arange(k)
    p_true = np.clip(probs[np.arange(y_true.size), y_true], PROB_EPSILON, 1.0)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    averaged = {avg: precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
                for avg in ("macro", "weighted")}
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    row_sums = confusion.sum(axis=1, keepdims=True)
    # Rows of classes absent from y_true stay 0 instead of 0/0.
    normalized = np.divide(confusion, row_sums, out=np.zeros(confusion.shape), where=row_sums > 0)
    out: dict[str, Any] = {
        "n": int(y_true.size),
        "accuracy": float((y_pred == y_true).mean()),
        "loss": float(-np.log(p_true).mean()),
        "accuracy_ci95": list(bootstrap_accuracy_ci(y_true, y_pred, n=n_bootstrap, seed=seed)) if n_bootstrap else None,
        "per_class": {str(c): {"precision": float(precision[i]), "recall": float(recall[i]),
                               "f1": float(f1[i]), "support": int(support[i])} for i, c in enumerate(classes)},
    }
    for avg, (p, r, f, _) in averaged.items():
        out.update({f"{avg}_precision": float(p), f"{avg}_recall": float(r), f"{avg}_f1": float(f)})
    out["confusion"] = confusion.astype(int).tolist()
    out["confusion_normalized"] = normalized.tolist()
    return out


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the finite values, e.g. one metric across seeds.

    Missing values (NaN, from failed trials) are ignored. The std is NaN with fewer than two values, so a
    single seed is not presented as having zero spread; both are NaN when nothing is left.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
