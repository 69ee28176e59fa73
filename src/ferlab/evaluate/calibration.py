"""Confidence calibration: expected calibration error and temperature scaling (Guo et al., 2017).

A network trained with cross-entropy is usually over-confident: among faces it labels with 90%
confidence, fewer than 90% are right. Temperature scaling divides the logits by one number T > 0 fitted
on validation faces (minimum negative log-likelihood); it changes no prediction, only the confidences.
ferlab models end in a softmax, so the logits are recovered from the probabilities as log p (softmax is
shift-invariant, so log p equals the logits up to a per-face constant, which softmax ignores).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize_scalar

from ferlab.errors import FerlabError

ECE_BINS = 15  # equal-width confidence bins, as in Guo et al.
TEMPERATURE_RANGE = (0.05, 20.0)
_EPS = 1e-12


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    if probs.ndim != 2 or len(probs) != len(labels) or len(probs) == 0:
        raise FerlabError(f"calibration: need probabilities (N, C) and N labels, got {probs.shape} and {labels.shape}")
    return probs, labels


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the |accuracy - confidence| gap of each confidence bin, weighted by the share of faces in it."""
    probs, labels = _check(probs, labels)
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 cannot occur (max of a softmax).
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities a model would give with its logits divided by T."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), _EPS, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(1, keepdims=True)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    probs, labels = _check(probs, labels)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, 1.0))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray,
                    transform: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """The T in :data:`TEMPERATURE_RANGE` minimising the NLL of ``apply_temperature(probs, T)``.

    ``transform`` maps the scaled probabilities to the ones ``labels`` index (e.g. a 7-class model's merged
    into the study's 5 classes), so T is fitted for the output that ships. One parameter and a smooth
    objective in log T: a bounded scalar search (scipy) is exact enough and needs no gradient code.
    """
    probs = np.asarray(probs, np.float64)
    transform = transform or (lambda p: p)
    _check(transform(probs), labels)
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(transform(apply_temperature(probs, np.exp(log_t))), labels),
        bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def calibration_summary(probs: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE and NLL before and after temperature scaling, for a model card."""
    scaled = apply_temperature(probs, temperature)
    return {"temperature": round(temperature, 4),
            "ece_before": expected_calibration_error(probs, labels), "ece_after": expected_calibration_error(scaled, labels),
            "nll_before": negative_log_likelihood(probs, labels), "nll_after": negative_log_likelihood(scaled, labels),
            "ece_bins": ECE_BINS}
