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
