"""Metrics and significance tests against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ferlab.evaluate.metrics import bootstrap_accuracy_ci, classification_metrics, mean_std
from ferlab.evaluate.significance import mcnemar_exact, pairwise_mcnemar

CLASSES = ["a", "b", "c"]
# 6 images; predictions (argmax) are a, a, b, c, c, a -> 4 correct.
Y = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array([
    [0.8, 0.1, 0.1],   # a, right
    [0.5, 0.3, 0.2],   # a, right
    [0.2, 0.7, 0.1],   # b, right
    [0.1, 0.0, 0.9],   # c, wrong (true b, p_true = 0 -> clipped)
    [0.1, 0.2, 0.7],   # c, right
    [0.6, 0.2, 0.2],   # a, wrong (true c)
])


def test_classification_metrics_hand_computed():
    m = classification_metrics(Y, PROBS, CLASSES, n_bootstrap=200)
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    expected_loss = -np.mean(np.log([0.8, 0.5, 0.7, 1e-7, 0.7, 0.2]))
    assert m["loss"] == pytest.approx(expected_loss)
    assert m["confusion"] == [[2, 0, 0], [0, 1, 1], [1, 0, 1]]
    assert m["confusion_normalized"] == [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]
    # a: predicted 3 times, 2 right -> P=2/3, R=1; b: P=1, R=1/2; c: P=1/2, R=1/2.
    pc = m["per_class"]
    assert pc["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert pc["b"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert pc["c"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["macro_precision"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert m["macro_recall"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.5) / 3)
    assert m["weighted_f1"] == pytest.approx(m["macro_f1"])  # balanced supports
    lo, hi = m["accuracy_ci95"]
    assert 0 <= lo <= m["accuracy"] <= hi <= 1
    json.dumps(m)  # plain Python types only


def test_classification_metrics_unpredicted_and_absent_class():
    # Class c never occurs and is never predicted: zero_division=0 gives zeros, not warnings or NaN.
    m = classification_metrics([0, 1], np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]), CLASSES, n_bootstrap=0)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["accuracy_ci95"] is None  # n_bootstrap=0: no CI (the trainer does this for train/val)
    assert m["confusion_normalized"][2] == [0.0, 0.0, 0.0]


def test_classification_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(Y, PROBS[:, :2], CLASSES)
    with pytest.raises(ValueError, match="class ids"):
        classification_metrics([0, 5, 1, 1, 2, 2], PROBS, CLASSES)


def test_bootstrap_ci_contains_accuracy_and_narrows_with_test_size():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 4000)
    pred = np.where(rng.random(4000) < 0.7, y, (y + 1) % 5)
    widths = []
    for size in (100, 400, 4000):
        acc = float((pred[:size] == y[:size]).mean())
        lo, hi = bootstrap_accuracy_ci(y[:size], pred[:size], n=2000, seed=0)
        assert lo <= acc <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # Roughly the normal-approximation width 2 * 1.96 * sqrt(p(1-p)/n).
    assert widths[2] == pytest.approx(2 * 1.96 * math.sqrt(0.7 * 0.3 / 4000), rel=0.15)
    assert bootstrap_accuracy_ci(y, pred, seed=3) == bootstrap_accuracy_ci(y, pred, seed=3)  # deterministic


def test_bootstrap_ci_of_several_seeds_is_for_their_mean():
    y = np.array([0, 1, 2, 3] * 50)
    runs = np.stack([y, np.where(np.arange(200) % 2 == 0, y, -1)])  # accuracies 1.0 and 0.5
    lo, hi = bootstrap_accuracy_ci(y, runs, n=500)
    assert lo <= 0.75 <= hi and hi < 1.0
    with pytest.raises(ValueError, match="shape"):
        bootstrap_accuracy_ci(y, runs[:, :10])


def test_mean_std():
    assert mean_std([0.5, 0.7, float("nan")]) == pytest.approx((0.6, math.sqrt(0.02)))
    mean, std = mean_std([0.5])
    assert mean == 0.5 and math.isnan(std)
    assert all(math.isnan(v) for v in mean_std([]))


def _pair(b: int, c: int, both: int = 5, neither: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two predictions with b images only A gets right and c only B gets right."""
    y = np.zeros(b + c + both + neither, dtype=int)
    a_ok = np.r_[np.ones(b), np.zeros(c), np.ones(both), np.zeros(neither)].astype(bool)
    b_ok = np.r_[np.zeros(b), np.ones(c), np.ones(both), np.zeros(neither)].astype(bool)
    return y, np.where(a_ok, 0, 1), np.where(b_ok, 0, 2)


def test_mcnemar_exact_hand_computed_and_symmetric():
    y, a, b = _pair(10, 2)
    result = mcnemar_exact(y, a, b)
    # Two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    assert (result["b"], result["c"]) == (10, 2)
    assert result["p_value"] == pytest.approx(2 * 79 / 4096)
    swapped = mcnemar_exact(y, b, a)
    assert (swapped["b"], swapped["c"]) == (2, 10) and swapped["p_value"] == pytest.approx(result["p_value"])
    assert mcnemar_exact(y, a, a) == {"b": 0, "c": 0, "p_value": 1.0}


def test_pairwise_mcnemar_matrix():
    y, a, b = _pair(10, 2)
    matrix = pairwise_mcnemar({"x": a, "y": b, "z": a}, y)
    assert matrix.shape == (3, 3) and list(matrix.columns) == ["x", "y", "z"]
    assert np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix, matrix.T)
    assert matrix.loc["x", "y"] == pytest.approx(2 * 79 / 4096) and matrix.loc["x", "z"] == 1.0


def test_pairwise_mcnemar_several_seeds_takes_the_largest_p():
    y, a, b = _pair(10, 2)
    _, a2, b2 = _pair(7, 5)  # same length, not significant
    matrix = pairwise_mcnemar({"x": np.stack([a, a2]), "y": np.stack([b, b2])}, y)
    assert matrix.loc["x", "y"] == pytest.approx(mcnemar_exact(y, a2, b2)["p_value"])
    with pytest.raises(ValueError, match="seeds"):
        pairwise_mcnemar({"x": np.stack([a, a2]), "y": b}, y)


def test_seed_statistics_hand_computed():
    from ferlab.evaluate.significance import (minimum_detectable_difference, paired_seed_difference, seed_mean_ci,
                                              welch_difference)

    s = seed_mean_ci(np.array([0.60, 0.62, 0.64]))  # mean 0.62, sd 0.02, t(0.975, 2) = 4.3027
    assert s["mean"] == pytest.approx(0.62) and s["std"] == pytest.approx(0.02)
    assert s["ci_high"] - s["mean"] == pytest.approx(4.3027 * 0.02 / math.sqrt(3), rel=1e-4)
    assert math.isnan(seed_mean_ci(np.array([0.5]))["ci_low"])
    # (t(0.975, 2) + t(0.8, 2)) * sd / sqrt(n) = (4.3027 + 1.0607) / sqrt(3) for sd 1
    assert minimum_detectable_difference(1.0, 3) == pytest.approx((4.3027 + 1.0607) / math.sqrt(3), rel=1e-4)
    # paired: differences 0.020, 0.021, 0.019 -> mean 0.02, sd 0.001; the pairing removes the large seed effect
    a, b = np.array([0.620, 0.511, 0.719]), np.array([0.600, 0.490, 0.700])
    d = paired_seed_difference(a, b)
    assert d["mean"] == pytest.approx(0.02) and d["std"] == pytest.approx(0.001)
    assert d["ci_low"] > 0 and d["p_value"] < 0.01
    assert welch_difference(a, b)["p_value"] > 0.5  # unpaired, the seed effect swamps the difference
    # two seeds that differ by the same number of faces: no spread, so no interval (not a zero-width one)
    same = paired_seed_difference(np.array([0.6162, 0.6152]), np.array([0.6070, 0.6060]))
    assert same["mean"] == pytest.approx(0.0092)
    assert all(math.isnan(same[k]) for k in ("ci_low", "ci_high", "p_value", "mdd"))
    with pytest.raises(ValueError):
        paired_seed_difference(np.array([0.1, 0.2]), np.array([0.1]))


def test_holm_adjustment_hand_computed():
    from ferlab.evaluate.significance import holm_adjust

    # sorted 0.01, 0.02, 0.04 of three tests (the NaN is not one): x3, x2 (then the running maximum), x1
    adjusted = holm_adjust([0.04, float("nan"), 0.01, 0.02])
    assert adjusted[2] == pytest.approx(0.03) and adjusted[3] == pytest.approx(0.04)
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1])
    # 0.011 x 2 = 0.022 would undercut 0.01 x 3 = 0.03: the step-down keeps the running maximum
    assert holm_adjust([0.01, 0.011, 0.5]) == pytest.approx([0.03, 0.03, 0.5])
    assert list(holm_adjust([0.6, 0.5])) == [1.0, 1.0]  # capped at 1
