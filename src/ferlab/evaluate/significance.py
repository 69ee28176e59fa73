"""Paired significance tests between models evaluated on the same test images.

McNemar's test looks only at the images the two models disagree on, which is the right question for
"does pooling A classify this test set differently from pooling B?" and, unlike comparing two accuracies
with independent CIs, accounts for the pairing. The exact (binomial) form is used because the number of
discordant images can be small.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import binomtest


def mcnemar_exact(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, float | int]:
    """Exact two-sided McNemar test of two classifiers on the same images.

    ``b`` counts images only A gets right, ``c`` images only B gets right. Under the null (equal error
    rates) ``b ~ Binomial(b + c, 1/2)``; the p-value is the two-sided binomial test, and 1.0 when the models
    never disagree on correctness (``b + c == 0``). Symmetric: swapping A and B swaps b and c, not p.
    """
    y_true, pred_a, pred_b = (np.asarray(a) for a in (y_true, pred_a, pred_b))
    if not (y_true.ndim == 1 and y_true.shape == pred_a.shape == pred_b.shape):
        raise ValueError(f"need three 1-D arrays of one length; got {y_true.shape}, {pred_a.shape}, {pred_b.shape}")
    ok_a, ok_b = pred_a == y_true, pred_b == y_true
    b, c = int(np.sum(ok_a & ~ok_b)), int(np.sum(~ok_a & ok_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return {"b": b, "c": c, "p_value": p}


def pairwise_mcnemar(preds: Mapping[str, np.ndarray], y_true: np.ndarray) -> pd.DataFrame:
    """Square matrix of McNemar p-values between every pair of models (diagonal 1.0), in ``preds`` order.

    Each value of ``preds`` is ``(n_images,)`` for one run, or ``(n_seeds, n_images)`` for several seeds,
    where row ``i`` of every model is the same seed (the caller pairs them). Several seeds are combined by an
    intersection-union test: the pair is tested separately in every seed and the reported p-value is the
    *largest*. A small value therefore means "the two models differ significantly in every seed"; this is a
    valid level-alpha test of that claim without correction across seeds, conservative, and never treats the
    same test image as independent evidence twice (pooling predictions across seeds would). Pairs are not
    corrected for multiple comparisons across models.
    """
    names = list(preds)
    stacked = {name: np.atleast_2d(np.asarray(p)) for name, p in preds.items()}
    seeds = {arr.shape[0] for arr in stacked.values()}
    if len(seeds) > 1:
        raise ValueError(f"every model needs the same number of seeds; got {sorted(seeds)}")
    matrix = pd.DataFrame(1.0, index=pd.Index(names, name="model"), columns=names)
    for a, b in itertools.combinations(names, 2):
        p = max(mcnemar_exact(y_true, ra, rb)["p_value"] for ra, rb in zip(stacked[a], stacked[b], strict=True))
        matrix.loc[a, b] = matrix.loc[b, a] = p
    return matrix


# ------------------------------------------------------------------------------ statistics over seeds
# Seeds are repeated trainings on one data split: their spread is the training randomness (initialisation,
# augmentation, batch order, dropout), not the sampling of faces, which the test-set bootstrap and McNemar
# cover. Student's t with n - 1 degrees of freedom is used because n (seeds) is small, and it assumes the
# per-seed values (or paired differences) are roughly normal and independent across seeds.
POWER = 0.8


def seed_mean_ci(values: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation and the t confidence interval of the mean of per-seed values
    (NaN spread and interval with a single seed)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return {"n": n, "mean": mean, "std": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    std = float(values.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / np.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def minimum_detectable_difference(std: float, n: int, alpha: float = 0.05, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t test over ``n`` seeds detects with ``power``
    at level ``alpha``, for per-seed differences of standard deviation ``std`` (the usual normal-theory
    approximation (t_{1-alpha/2} + t_{power}) * std / sqrt(n), with n - 1 degrees of freedom)."""
    from scipy.stats import t

    if n < 2 or not np.isfinite(std):
        return float("nan")
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * std / np.sqrt(n))


def paired_seed_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """A - B over seeds paired by seed (same split, same seed): mean difference, its t interval, the paired
    t test's two-sided p-value and the minimum detectable difference of this design.

    Per-seed differences that are all equal (it happens: accuracies on one test set move in steps of one
    face, and two seeds can differ by the same number of faces) have no spread to estimate one from: the
    interval, p-value and detectable difference are then NaN, not a zero-width interval."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of per-seed values of one length; got {a.shape}, {b.shape}")
    diff = seed_mean_ci(a - b, level)
    if not diff["std"] > 1e-9:  # no spread (or one seed): nothing to build an interval or a test from
        nan = float("nan")
        return {**diff, "ci_low": nan, "ci_high": nan, "p_value": nan, "mdd": nan}
    p = float(ttest_rel(a, b).pvalue)
    return {**diff, "p_value": p, "mdd": minimum_detectable_difference(diff["std"], diff["n"], 1 - level)}


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down adjustment of p-values for a family of tests (NaN entries stay NaN and are not
    counted): an adjusted p below alpha keeps the chance of any false positive in the family at alpha,
    whatever the dependence between the tests. Written here because the only library with it
    (statsmodels) would be a dependency for eight lines."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # step-down: never below an earlier, smaller p
        adjusted[i] = running
    return adjusted


def welch_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """A - B for two independent sets of seeds (e.g. two data splits, whose test faces differ, so nothing
    pairs): difference of means with Welch's t interval and p-value (unequal variances)."""
    from scipy.stats import t, ttest_ind

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return {"n_a": len(a), "n_b": len(b), "mean": diff, "ci_low": float("nan"), "ci_high": float("nan"),
                "p_value": float("nan")}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else float(len(a) + len(b) - 2)
    half = float(t.ppf(0.5 + level / 2, dof)) * se
    p = float(ttest_ind(a, b, equal_var=False).pvalue) if se > 0 else float("nan")
    return {"n_a": len(a), "n_b": len(b), "mean": diff, "ci_low": diff - half, "ci_high": diff + half, "p_value": p}
