"""MBG/NBD: published CDNOW values (Batislam et al. 2007 conventions), lifetimes on the same data, properties."""
from __future__ import annotations

import numpy as np
import pytest

from custscore.errors import FitError
from custscore.training.mbgnbd import ModifiedBetaGeoLikelihood, ModifiedBetaGeoModel
from custscore.training.purchase_models import PurchaseModel

lifetimes = pytest.importorskip("lifetimes")

#: CDNOW sample, weeks, cutoff 1997-09-30 (issue #16; lifetimes' ModifiedBetaGeoFitter docs).
PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
NAMES = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def fitted(cdnow_weeks) -> ModifiedBetaGeoModel:
    return ModifiedBetaGeoModel().fit(*cdnow_weeks)


def _theirs(params: dict) -> "lifetimes.ModifiedBetaGeoFitter":
    import pandas as pd

    fitter = lifetimes.ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(params)[list(NAMES)]
    return fitter


def test_cdnow_matches_published_parameters(fitted: ModifiedBetaGeoModel, cdnow_weeks) -> None:
    assert isinstance(fitted, PurchaseModel)
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=0.01), name
    assert fitted.n_customers_ == len(cdnow_weeks[0]) == 2357
    assert fitted.warnings_ == ()
    assert all(np.isfinite(v) and v > 0 for v in fitted.diagnostics_["standard_errors"].values())


def test_fit_and_log_likelihood_equal_lifetimes(fitted: ModifiedBetaGeoModel, cdnow_weeks) -> None:
    x, t_x, T = cdnow_weeks
    theirs = lifetimes.ModifiedBetaGeoFitter().fit(x, t_x, T)
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(theirs.params_[name], rel=1e-5), name
    params = np.array([PUBLISHED[k] for k in NAMES])
    mean_nll = lifetimes.ModifiedBetaGeoFitter._negative_log_likelihood(np.log(params), x, t_x, T, np.ones(len(x)), 0.0)
    ours, _ = ModifiedBetaGeoLikelihood(x, t_x, T, np.ones(len(x))).value_and_gradient(params)
    assert ours == pytest.approx(-mean_nll * len(x), rel=1e-6)
    model = ModifiedBetaGeoModel()
    model.params_ = dict(PUBLISHED)
    assert model.log_likelihood_per_customer(x, t_x, T).sum() == pytest.approx(ours, rel=1e-12)


def test_p_alive_equals_lifetimes_and_is_below_one_for_one_time_buyers(fitted, cdnow_weeks) -> None:
    x, t_x, T = cdnow_weeks
    ours = fitted.p_alive(x, t_x, T)
    np.testing.assert_allclose(ours, _theirs(fitted.params_).conditional_probability_alive(x, t_x, T), rtol=1e-6)
    assert np.all(ours[x == 0] < 1.0) and np.all((ours > 0) & (ours < 1))


@pytest.mark.parametrize("t", [1.0, 10.0, 39.0, 52.0 * 5])
def test_conditional_expected_purchases_equal_lifetimes(fitted, cdnow_weeks, t: float) -> None:
    x, t_x, T = cdnow_weeks
    theirs = _theirs(fitted.params_).conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
    np.testing.assert_allclose(fitted.expected_purchases(t, x, t_x, T), np.asarray(theirs), rtol=1e-6)


def test_p_no_purchase_of_a_new_customer_from_the_generative_story() -> None:
    # T = 0: dropped at time zero with probability a/(a+b), else silent for t with (alpha/(alpha+t))**r.
    model = ModifiedBetaGeoModel()
    model.params_ = dict(PUBLISHED)
    r, alpha, a, b = (PUBLISHED[k] for k in NAMES)
    t = 20.0
    expected = a / (a + b) + b / (a + b) * (alpha / (alpha + t)) ** r
    assert model.p_no_purchase(t, [0], [0.0], [0.0])[0] == pytest.approx(expected, rel=1e-12)


def test_analytic_gradient_matches_finite_differences(cdnow_weeks) -> None:
    x, t_x, T = cdnow_weeks
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(x))
    lik = ModifiedBetaGeoLikelihood(x, t_x, T, w)
    for theta in (np.array([0.525, 6.183, 0.891, 1.614]), np.array([1.5, 0.7, 3.0, 0.6])):
        _, grad = lik.value_and_gradient(theta)
        steps = 1e-6 * theta
        numeric = [(lik.value_and_gradient(theta + s * e)[0] - lik.value_and_gradient(theta - s * e)[0]) / (2 * s)
                   for s, e in zip(steps, np.eye(4))]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_weighted_fit_equals_raw_fit(cdnow_weeks) -> None:
    x, t_x, T = cdnow_weeks
    counts = np.random.default_rng(1).integers(1, 4, len(x))
    weighted = ModifiedBetaGeoModel().fit(x, t_x, T, weights=counts)
    plain = ModifiedBetaGeoModel().fit(np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(T, counts))
    for name in NAMES:
        assert weighted.params_[name] == pytest.approx(plain.params_[name], rel=1e-6), name
    assert weighted.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-9)


def test_degenerate_data_is_a_fit_error() -> None:
    with pytest.raises(FitError, match="cannot fit MBG/NBD: no customer has a repeat purchase"):
        ModifiedBetaGeoModel().fit([0] * 12, [0.0] * 12, [3.0] * 12)
    with pytest.raises(FitError, match="ModifiedBetaGeoModel is not fitted yet"):
        ModifiedBetaGeoModel().p_alive([1], [1.0], [2.0])


def test_recovers_simulated_parameters() -> None:
    from custscore.training.simulate import simulate_mbgnbd

    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
    T = np.random.default_rng(11).uniform(27, 39, 20_000)
    data = simulate_mbgnbd(20_000, **truth, T=T, seed=12)
    assert (data["frequency"] == 0).mean() > 0.3  # dropout at time zero leaves many one-time buyers
    model = ModifiedBetaGeoModel().fit(data["frequency"], data["recency"], data["T"])
    se = model.diagnostics_["standard_errors"]
    for name, value in truth.items():
        assert se[name] / value < 0.25, f"{name}: standard error too large for a meaningful test"
        assert abs(model.params_[name] - value) < 4 * se[name], f"{name}: {model.params_[name]} vs {value} (se {se[name]})"
