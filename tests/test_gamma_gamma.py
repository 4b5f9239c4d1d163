"""Gamma-Gamma: published CDNOW values, lifetimes on the same data, properties, simulation recovery."""
from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custscore.errors import CustscoreError, FitError
from custscore.training.gamma_gamma import MIN_CUSTOMERS, GammaGammaModel, gamma_gamma_log_likelihood
from custscore.training.simulate import simulate_bgnbd, simulate_spend

lifetimes = pytest.importorskip("lifetimes")

PAPER = {"p": 6.25, "q": 3.74, "v": 15.44}
DATASETS = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def repeaters(cdnow: pd.DataFrame) -> pd.DataFrame:
    return cdnow[cdnow["x"] > 0]


@pytest.fixture(scope="module")
def fitted(repeaters: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(repeaters["x"], repeaters["zbar"])


def _lifetimes_ggf(params: dict) -> "lifetimes.GammaGammaFitter":
    fitter = lifetimes.GammaGammaFitter()
    fitter.params_ = pd.Series(params)[["p", "q", "v"]]
    return fitter


def test_cdnow_matches_published_parameters(fitted: GammaGammaModel, repeaters: pd.DataFrame) -> None:
    assert set(fitted.params_) == {"p", "q", "v"}
    for name, value in PAPER.items():
        assert fitted.params_[name] == pytest.approx(value, rel=0.03), name
        assert isinstance(fitted.params_[name], float)
    assert fitted.n_customers_ == len(repeaters) == 946


def test_log_likelihood_equals_lifetimes(repeaters: pd.DataFrame, fitted: GammaGammaModel) -> None:
    x, m = repeaters["x"].to_numpy(float), repeaters["zbar"].to_numpy()
    params = np.array([PAPER["p"], PAPER["q"], PAPER["v"]])
    mean_nll = lifetimes.GammaGammaFitter._negative_log_likelihood(np.log(params), x, m, np.ones(len(x)), 0.0)
    ours, _ = gamma_gamma_log_likelihood(params, x, m, np.ones(len(x)))
    assert ours == pytest.approx(-mean_nll * len(x), rel=1e-6)
    at_fit, _ = gamma_gamma_log_likelihood(np.array(list(fitted.params_.values())), x, m, np.ones(len(x)))
    assert fitted.log_likelihood_ == pytest.approx(at_fit, rel=1e-12)


def test_fit_and_variance_equal_lifetimes(repeaters: pd.DataFrame, fitted: GammaGammaModel) -> None:
    theirs = lifetimes.GammaGammaFitter().fit(repeaters["x"], repeaters["zbar"])
    for name in ("p", "q", "v"):
        assert fitted.params_[name] == pytest.approx(theirs.params_[name], rel=1e-5), name
    ours = fitted.variance_matrix_
    assert list(ours.index) == list(ours.columns) == ["p", "q", "v"]
    np.testing.assert_allclose(np.diag(ours), np.diag(theirs.variance_matrix_), rtol=1e-3)


def test_expected_average_spend_equals_lifetimes(cdnow: pd.DataFrame, fitted: GammaGammaModel) -> None:
    # All CDNOW customers: for x = 0 the file has zbar = 0 and both return the population mean.
    theirs = _lifetimes_ggf(fitted.params_).conditional_expected_average_profit(cdnow["x"], cdnow["zbar"])
    ours = fitted.expected_average_spend(cdnow["x"], cdnow["zbar"])
    assert ours.shape == (len(cdnow),)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_frequency_zero_gets_population_mean(fitted: GammaGammaModel) -> None:
    p, q, v = fitted.params_["p"], fitted.params_["q"], fitted.params_["v"]
    out = fitted.expected_average_spend([0, 0, 3], [np.nan, 0.0, 20.0])
    assert out[0] == out[1] == pytest.approx(p * v / (q - 1))
    assert out[2] == pytest.approx(p * (v + 3 * 20.0) / (3 * p + q - 1))
    with pytest.raises(CustscoreError, match="monetary_value: must be finite and > 0 when frequency >= 1; position 1"):
        fitted.expected_average_spend([0, 2], [0.0, np.nan])


def test_properties(repeaters: pd.DataFrame) -> None:
    x, m = repeaters["x"], repeaters["zbar"]
    model = GammaGammaModel(n_starts=2, seed=1)
    assert vars(model) == {"penalizer": 0.0, "n_starts": 2, "seed": 1}
    assert model.fit(x, m) is model
    assert pickle.loads(pickle.dumps(model)).params_ == model.params_
    # weighted unique-row fit equals the raw-row fit
    counts = np.random.default_rng(3).integers(1, 4, len(x))
    raw = repeaters.loc[repeaters.index.repeat(counts)]
    weighted = GammaGammaModel().fit(x, m, weights=counts)
    plain = GammaGammaModel().fit(raw["x"], raw["zbar"])
    for name in ("p", "q", "v"):
        assert weighted.params_[name] == pytest.approx(plain.params_[name], rel=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)


def test_currency_unit_only_rescales_v(repeaters: pd.DataFrame, fitted: GammaGammaModel) -> None:
    cents = GammaGammaModel().fit(repeaters["x"], repeaters["zbar"] * 100)
    assert cents.params_["p"] == pytest.approx(fitted.params_["p"], rel=1e-5)
    assert cents.params_["q"] == pytest.approx(fitted.params_["q"], rel=1e-5)
    assert cents.params_["v"] == pytest.approx(100 * fitted.params_["v"], rel=1e-5)


def test_analytic_gradient_matches_finite_differences(repeaters: pd.DataFrame) -> None:
    x, m = repeaters["x"].to_numpy(float), repeaters["zbar"].to_numpy()
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(x))
    for theta in (np.array([6.25, 3.74, 15.44]), np.array([0.8, 12.0, 3.0])):
        _, grad = gamma_gamma_log_likelihood(theta, x, m, w)
        steps = 1e-6 * theta
        numeric = np.array(
            [
                (gamma_gamma_log_likelihood(theta + steps * e, x, m, w)[0] - gamma_gamma_log_likelihood(theta - steps * e, x, m, w)[0])
                / (2 * steps[j])
                for j, e in enumerate(np.eye(3))
            ]
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)


@pytest.mark.parametrize(
    ("frequency", "monetary", "needle"),
    [
        ([1, 0], [10.0, 5.0], "frequency: must be a whole number >= 1; position 1 has 0.0"),
        ([1, 2.5], [10.0, 5.0], "frequency: must be a whole number >= 1; position 1 has 2.5"),
        ([1, 2], [10.0, 0.0], "monetary_value: must be > 0; position 1 has 0.0"),
        ([1, 2], [10.0, -3.0], "monetary_value: must be > 0; position 1 has -3.0"),
        ([1, 2], [np.nan, 3.0], "monetary_value: must be finite; position 0"),
        ([1, 2], [1.0], "equal lengths"),
    ],
)
def test_invalid_input_is_named(frequency, monetary, needle) -> None:
    with pytest.raises(CustscoreError) as info:
        GammaGammaModel().fit(frequency, monetary)
    assert needle in str(info.value)


def test_fit_errors() -> None:
    with pytest.raises(FitError, match=f"need at least {MIN_CUSTOMERS} customers"):
        GammaGammaModel().fit([1] * (MIN_CUSTOMERS - 1), [10.0] * (MIN_CUSTOMERS - 1))
    # q < 1 (simulated truth 0.7): the population mean spend is infinite. Not an error any
    # more: the fit is kept, flagged unusable, and says so (tests/test_diagnostics.py).
    x = np.random.default_rng(0).integers(1, 6, 5000)
    model = GammaGammaModel().fit(x, simulate_spend(x, 6.0, 0.7, 15.0, seed=1))
    assert model.params_["q"] < 1 and "<= 1" in model.unusable_ and model.diagnostics_["fallback"] == "own_mean"
    with pytest.raises(FitError, match="no spread to fit"):
        GammaGammaModel().fit([1, 2] * 10, [25.0] * 20)
    with pytest.raises(FitError, match="not fitted"):
        GammaGammaModel().expected_average_spend([1], [1.0])


def test_recovers_simulated_parameters() -> None:
    truth = {"p": 6.0, "q": 3.7, "v": 15.0}
    T = np.random.default_rng(21).uniform(27, 39, 20_000)
    freq = simulate_bgnbd(20_000, 0.25, 4.0, 0.8, 2.5, T=T, seed=22)["frequency"].to_numpy()
    freq = freq[freq > 0]
    spend = simulate_spend(freq, **truth, seed=23)
    model = GammaGammaModel().fit(freq, spend)
    se = np.sqrt(np.diag(model.variance_matrix_))
    for (name, value), s in zip(truth.items(), se):
        assert s / value < 0.25, f"{name}: standard error too large for a meaningful test"
        assert abs(model.params_[name] - value) < 4 * s, f"{name}: {model.params_[name]} vs {value} (se {s})"
