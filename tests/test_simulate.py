"""Simulators: seeded, shaped as documented, and faithful to the model they simulate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.simulate import simulate_bgnbd, simulate_spend, simulate_transactions

TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def _model(**params) -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(params)
    return model


def test_shape_validity_and_seeding() -> None:
    T = np.random.default_rng(0).uniform(27, 39, 1000)
    d = simulate_bgnbd(1000, **TRUTH, T=T, seed=1)
    assert list(d.columns) == ["frequency", "recency", "T"]
    assert d["frequency"].dtype.kind == "i"
    assert (d["recency"] >= 0).all() and (d["recency"] <= d["T"]).all()
    assert ((d["frequency"] == 0) == (d["recency"] == 0)).all()
    np.testing.assert_array_equal(d["T"], T)
    pd.testing.assert_frame_equal(d, simulate_bgnbd(1000, **TRUTH, T=T, seed=1))
    assert not d.equals(simulate_bgnbd(1000, **TRUTH, T=T, seed=2))


def test_moments_match_the_model() -> None:
    # Unconditional E[X(T)] (FHL 2005 eq. 9) and P(X(T) = 0) = (alpha / (alpha + T))**r (eq. 8, x = 0).
    n, T = 200_000, 39.0
    d = simulate_bgnbd(n, **TRUTH, T=T, seed=3)
    model = _model(**TRUTH)
    se = d["frequency"].std() / np.sqrt(n)
    assert abs(d["frequency"].mean() - model.expected_purchases_new(T)[0]) < 4 * se
    p0 = (TRUTH["alpha"] / (TRUTH["alpha"] + T)) ** TRUTH["r"]
    assert abs((d["frequency"] == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / n)


def test_p_alive_averages_to_the_simulated_survival() -> None:
    # E[P(alive | x, t_x, T)] over customers is the probability of being alive at T. P(alive)
    # depends on recency, so this checks the simulated t_x, not only x. The survival is
    # simulated independently: alive at T iff no dropout after any of the N arrivals (K > N).
    T, n = 30.0, 100_000
    model = _model(**TRUTH)
    sim = simulate_bgnbd(n, **TRUTH, T=T, seed=6)
    p_alive = model.p_alive(sim["frequency"], sim["recency"], sim["T"])
    rng = np.random.default_rng(5)
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    alive = rng.geometric(p) > rng.poisson(lam * T)
    assert abs(p_alive.mean() - alive.mean()) < 4 * np.sqrt(alive.var() / n + p_alive.var() / n)


def test_simulate_spend() -> None:
    x = np.array([0, 1, 3] * 40_000)
    m = simulate_spend(x, 6.0, 3.7, 15.0, seed=0)
    assert np.isnan(m[x == 0]).all() and (m[x > 0] > 0).all()
    ones = m[x == 1]
    assert abs(ones.mean() - 6.0 * 15.0 / 2.7) < 4 * ones.std() / np.sqrt(len(ones))
    with pytest.raises(CustscoreError, match="frequency"):
        simulate_spend(np.array([1.5]), 6.0, 3.7, 15.0, seed=0)


def test_simulate_transactions() -> None:
    n, start, end = 20_000, pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30")
    alpha_days = 28.0
    log = simulate_transactions(n, 0.25, alpha_days, 0.8, 2.5, 6.0, 3.7, 15.0, start, end, seed=7, cohort_days=84)
    assert list(log.columns) == ["customer_id", "date", "amount"]
    assert log["customer_id"].nunique() == n
    assert log["customer_id"].str.len().eq(5).all() and log["customer_id"].iloc[0] == "00000"
    assert log["date"].dtype.kind == "M" and (log["date"] == log["date"].dt.normalize()).all()
    assert log["date"].between(start, end).all() and (log["amount"] > 0).all()
    assert log.equals(log.sort_values(["customer_id", "date"], kind="stable"))
    first = log.groupby("customer_id")["date"].min()
    assert first.max() < start + pd.Timedelta(days=84)
    pd.testing.assert_frame_equal(
        log, simulate_transactions(n, 0.25, alpha_days, 0.8, 2.5, 6.0, 3.7, 15.0, start, end, seed=7, cohort_days=84)
    )

    # Repeat counts (transactions after the first, not merged by day) follow eq. 9 over each
    # customer's window from the first day to the end of the last day.
    repeats = log.groupby("customer_id").size() - 1
    window_days = (end - first).dt.days + 1
    expected = _model(r=0.25, alpha=alpha_days, a=0.8, b=2.5).expected_purchases_new(window_days.to_numpy())
    assert abs(repeats.mean() - expected.mean()) < 4 * repeats.std() / np.sqrt(n)
    # Recency: the last repeat day, relative to the window, is distributed as in
    # simulate_bgnbd (Beta order statistics there, exponential spacings here) over the same
    # windows; +0.5 undoes the flooring of times to days.
    has = repeats > 0
    last = log.groupby("customer_id")["date"].max()
    position = (((last - first).dt.days + 0.5) / window_days)[has]
    sim = simulate_bgnbd(n, 0.25, alpha_days, 0.8, 2.5, T=window_days.to_numpy(float), seed=8)
    sim_position = (sim["recency"] / sim["T"])[sim["frequency"] > 0]
    tolerance = 4 * np.sqrt(position.var() / len(position) + sim_position.var() / len(sim_position))
    assert abs(position.mean() - sim_position.mean()) < tolerance
    # Spend per transaction: E[amount] = p v / (q - 1).
    firsts = log.groupby("customer_id")["amount"].first()
    assert abs(firsts.mean() - 6.0 * 15.0 / 2.7) < 4 * firsts.std() / np.sqrt(n)


def test_invalid_arguments() -> None:
    with pytest.raises(CustscoreError, match="alpha"):
        simulate_bgnbd(10, 0.25, -1.0, 0.8, 2.5, T=30.0, seed=0)
    with pytest.raises(CustscoreError, match="T"):
        simulate_bgnbd(10, 0.25, 4.0, 0.8, 2.5, T=0.0, seed=0)
    with pytest.raises(CustscoreError, match="end"):
        simulate_transactions(10, 0.25, 28.0, 0.8, 2.5, 6.0, 3.7, 15.0, "1998-01-01", "1997-01-01", seed=0)
