"""Churn metrics against hand-computed values on tiny data, and the customer bootstrap."""
from __future__ import annotations

import math

import numpy as np
import pytest

from custscore.training import metrics as M

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_roc_auc_by_hand():
    # positives 0.35 (beats 0.1, loses to 0.4) and 0.8 (beats both): 3 of 4 pairs
    assert M.roc_auc(Y, S) == pytest.approx(0.75)
    # a tie between a churner and a non-churner counts 1/2
    assert M.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # weight 2 on the first non-churner = duplicating it: 5 wins of 6 pairs
    assert M.roc_auc(Y, S, weight=[2, 1, 1, 1]) == pytest.approx(5 / 6)
    assert M.roc_auc(Y + [0], S + [0.1]) == pytest.approx(5 / 6)
    assert math.isnan(M.roc_auc([1, 1], [0.2, 0.3]))


def test_roc_points_are_scikit_learns_curve_with_ties():
    """Every distinct score a threshold: scikit-learn's roc_curve without dropping collinear points."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3_000)
    score = np.round(rng.normal(size=3_000) + y, 1)  # many ties between churners and others
    fpr, tpr, auc = M.roc_points(y, score)
    ref_fpr, ref_tpr, _ = roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, score), abs=1e-12) == auc == M.roc_auc(y, score)


def test_pr_auc_by_hand():
    # ranked 0.8 (churner: precision 1, recall 1/2), 0.4 (no), 0.35 (churner: precision 2/3)
    assert M.pr_auc(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_brier_and_log_loss_by_hand():
    assert M.brier([0, 1], [0.2, 0.6]) == pytest.approx((0.2 ** 2 + 0.4 ** 2) / 2)
    assert M.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert M.brier([0, 1], [0.2, 0.6], weight=[3, 1]) == pytest.approx((3 * 0.04 + 0.16) / 4)


def test_expected_calibration_error_by_hand():
    # bin [0, .5): probabilities .1, .15, outcomes 0, 1: |0.5 - 0.125| x 2/4
    # bin [.5, 1]: probabilities .9, .8, outcomes 1, 1: |1 - 0.85| x 2/4
    ece = M.expected_calibration_error([0, 1, 1, 1], [0.1, 0.15, 0.9, 0.8], n_bins=2)
    assert ece == pytest.approx(0.375 / 2 + 0.15 / 2)
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_top_decile_lift_and_capture_by_hand():
    y = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    s = list(range(10, 0, -1))
    # top 10 % is the first customer, a churner: rate 1 vs 0.2 overall
    assert M.top_lift(y, s) == pytest.approx(5.0)
    assert M.top_capture(y, s) == pytest.approx(0.5)
    # ties at the boundary are shared pro rata: top 25 % of 4 = half of the tied pair (1 churner of 2)
    assert M.top_capture([1, 0, 1, 0], [1, 1, 0, 0], fraction=0.25) == pytest.approx(0.25)
    assert M.top_lift([1, 0, 1, 0], [1, 1, 0, 0], fraction=0.25) == pytest.approx(1.0)


def test_gains_curve_ends_at_one_and_reliability_table_counts():
    g = M.gains_curve([1, 0, 1, 0], [4, 3, 2, 1], n_points=5)
    assert g["share_captured"].tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    t = M.reliability_table([0, 1, 1], [0.05, 0.07, 0.95])
    assert t["customers"].tolist() == [2, 1]
    assert t["observed_rate"].tolist() == pytest.approx([0.5, 1.0])


def test_bootstrap_interval_matches_binomial_standard_error():
    # Brier of a constant 0 forecast is the churn rate: its bootstrap SE is sqrt(p(1-p)/n)
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.5).astype(int)
    table = M.bootstrap_table(y, {"zero": np.zeros(n)}, probabilities=("zero",), n_boot=2000, seed=1)
    row = table[table["metric"] == "brier"].iloc[0]
    p = y.mean()
    expected_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    assert row["estimate"] == pytest.approx(p)
    assert row["ci_high"] - row["ci_low"] == pytest.approx(expected_width, rel=0.15)


def test_bootstrap_is_reproducible_and_paired():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 1, 300)
    scores = {"good": good, "noise": rng.normal(0, 1, 300)}
    a = M.bootstrap_table(y, scores, reference="good", n_boot=200, seed=7)
    b = M.bootstrap_table(y, scores, reference="good", n_boot=200, seed=7)
    c = M.bootstrap_table(y, scores, reference="good", n_boot=200, seed=8)
    assert a.equals(b)
    assert not a.equals(c)
    auc = a[a["metric"] == "auc"].set_index("score")
    assert auc.loc["good", "diff"] == 0 and auc.loc["good", "diff_low"] == 0
    assert auc.loc["noise", "diff_high"] < 0  # clearly worse, beyond the noise
    assert (auc["ci_low"] <= auc["estimate"]).all() and (auc["estimate"] <= auc["ci_high"]).all()


def test_bootstrap_weights_resample_whole_customers():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    for w in M.bootstrap_weights(len(groups), 20, seed=0, groups=groups):
        assert w[0] == w[1] and w[3] == w[4] == w[5]
        assert w[0] + w[2] + w[3] == 3  # three customers drawn
    for w in M.bootstrap_weights(5, 5, seed=0):
        assert w.sum() == 5
