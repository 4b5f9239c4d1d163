"""Discounting maths and expected CLV: domain.md check values and lifetimes' customer_lifetime_value."""
from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custscore.config import DAYS_PER_YEAR
from custscore.errors import CustscoreError
from custscore.training.bgnbd import BetaGeoModel
from custscore.training.gamma_gamma import GammaGammaModel
from custscore.training.value import annuity_value, discount_factor, expected_clv, step_ends_days

lifetimes = pytest.importorskip("lifetimes")

DATASETS = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"
BG_WEEKS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")


def _model(cls, params):
    model = cls()
    model.params_ = dict(params)
    return model


def test_customer_value_formula_from_domain() -> None:
    assert annuity_value(100, 0.10, 1) == pytest.approx(90.909, abs=5e-4)
    assert annuity_value(100, 0.10, 2) == pytest.approx(173.554, abs=5e-4)
    by_factors = 100 * discount_factor(DAYS_PER_YEAR, 0.10) + 100 * discount_factor(2 * DAYS_PER_YEAR, 0.10)
    assert by_factors == pytest.approx(annuity_value(100, 0.10, 2), rel=1e-12)
    assert 100 * discount_factor(2 * DAYS_PER_YEAR, 0.10) == pytest.approx(82.645, abs=5e-4)


def test_value_falls_as_rate_rises_and_zero_rate() -> None:
    values = [annuity_value(100, r, 5) for r in (0.0, 0.05, 0.10, 0.5)]
    assert values[0] == 500.0
    assert all(a > b for a, b in zip(values, values[1:]))
    np.testing.assert_allclose(discount_factor(np.array([0.0, 30.0]), 0.0), [1.0, 1.0])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), True])
def test_invalid_rate_is_rejected(rate) -> None:
    with pytest.raises(CustscoreError, match="discount_rate_yearly: must be in"):
        discount_factor(10, rate)


def test_step_ends() -> None:
    assert step_ends_days(90, 30).tolist() == [30.0, 60.0, 90.0]
    assert step_ends_days(75, 30).tolist() == [30.0, 60.0, 75.0]
    assert step_ends_days(10, 30).tolist() == [10.0]


@pytest.mark.parametrize("months", [1, 12, 36])
def test_expected_clv_equals_lifetimes(cdnow: pd.DataFrame, months: int) -> None:
    # lifetimes, freq="D": 30-day months discounted monthly at m from the end of each month.
    bg_days = dict(BG_WEEKS, alpha=BG_WEEKS["alpha"] * 7)
    x, t_x, T, zbar = cdnow["x"], cdnow["t_x"] * 7, cdnow["T"] * 7, cdnow["zbar"]
    monthly = 0.01
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = pd.Series(bg_days)[["r", "alpha", "a", "b"]]
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # lifetimes sets this in fit
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = pd.Series(GG)[["p", "q", "v"]]
    theirs = ggf.customer_lifetime_value(bgf, x, t_x, T, zbar, time=months, discount_rate=monthly, freq="D")

    spend = _model(GammaGammaModel, GG).expected_average_spend(x, zbar)
    ours = expected_clv(
        _model(BetaGeoModel, bg_days), x, t_x, T, spend,
        horizon_days=30 * months, days_per_unit=1, discount_rate_yearly=(1 + monthly) ** (DAYS_PER_YEAR / 30) - 1,
        step_days=30,
    )
    assert ours.shape == (len(cdnow),)
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-6)


def test_expected_clv_does_not_depend_on_model_unit(cdnow: pd.DataFrame) -> None:
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    weeks = expected_clv(_model(BetaGeoModel, BG_WEEKS), x, t_x, T, 20.0, 365, 7, 0.1)
    days = expected_clv(_model(BetaGeoModel, dict(BG_WEEKS, alpha=BG_WEEKS["alpha"] * 7)), x, t_x * 7, T * 7, 20.0, 365, 1, 0.1)
    np.testing.assert_allclose(weeks, days, rtol=1e-9)


def test_expected_clv_steps_and_zero_rate(cdnow: pd.DataFrame) -> None:
    bg = _model(BetaGeoModel, BG_WEEKS)
    x, t_x, T = cdnow["x"].head(100), cdnow["t_x"].head(100), cdnow["T"].head(100)
    # rate 0: spend times the purchases expected in the whole horizon
    np.testing.assert_allclose(
        expected_clv(bg, x, t_x, T, 2.0, 75, 7, 0.0), 2.0 * bg.expected_purchases(75 / 7, x, t_x, T), rtol=1e-12
    )
    # a shorter last step ends exactly at the horizon
    e = [bg.expected_purchases(d / 7, x, t_x, T) for d in (30, 60, 75)]
    direct = e[0] * discount_factor(30, 0.1) + (e[1] - e[0]) * discount_factor(60, 0.1) + (e[2] - e[1]) * discount_factor(75, 0.1)
    np.testing.assert_allclose(expected_clv(bg, x, t_x, T, 1.0, 75, 7, 0.1), direct, rtol=1e-12)
    with pytest.raises(CustscoreError, match="horizon_days"):
        expected_clv(bg, x, t_x, T, 1.0, 0, 7, 0.1)
    with pytest.raises(CustscoreError, match="expected_spend"):
        expected_clv(bg, x, t_x, T, np.ones(3), 30, 7, 0.1)


@pytest.mark.parametrize("module", ["fitting", "bgnbd", "gamma_gamma", "value", "simulate", "texts", "columns"])
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(f"custscore.training.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
