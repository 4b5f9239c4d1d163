"""Fits on large data: analytic Hessians, and the subsample + Newton path against lifetimes.

From ``FitSettings.subsample_from`` rows the multi-start search runs on a sample and the
full data only takes Newton steps with the analytic Hessian. These tests check that
shortcut against independent truth: finite differences of the analytic gradient, the
optimum lifetimes finds on the same data, and the full-data search without the shortcut.
"""
from __future__ import annotations

import numpy as np
import pytest

from custscore.training.bgnbd import BetaGeoLikelihood, BetaGeoModel
from custscore.training.fitting import FitSettings, fit_log_params, newton_refine, numerical_hessian, _LogObjective
from custscore.training.gamma_gamma import GammaGammaLikelihood, GammaGammaModel
from custscore.training.simulate import simulate_bgnbd, simulate_spend

# One worker runs this module (--dist loadgroup in pyproject.toml): one 60,000-customer simulation.
pytestmark = pytest.mark.xdist_group("large_fits")

lifetimes = pytest.importorskip("lifetimes")

TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


@pytest.fixture(scope="module")
def population():
    """60,000 simulated customers in weeks (more than FitSettings.subsample_from)."""
    T = np.random.default_rng(3).uniform(27, 39, 60_000)
    data = simulate_bgnbd(60_000, **TRUTH, T=T, seed=4)
    x = data["frequency"].to_numpy(float)
    spend = simulate_spend(x.astype(int), p=6.0, q=3.5, v=15.0, seed=5)
    return data, spend


@pytest.mark.parametrize("dropout_at_zero", [False, True], ids=["bgnbd", "mbgnbd"])
@pytest.mark.parametrize("theta", [np.array([0.243, 4.414, 0.793, 2.426]), np.array([1.5, 0.7, 3.0, 0.6])])
def test_bgnbd_hessian_equals_finite_differences(population, theta, dropout_at_zero) -> None:
    data, _ = population
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(data))
    lik = BetaGeoLikelihood(data["frequency"], data["recency"], data["T"], w, dropout_at_zero=dropout_at_zero)
    numeric = numerical_hessian(lambda p: lik.value_and_gradient(p)[1], theta)
    np.testing.assert_allclose(lik.hessian(theta), numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_gamma_gamma_hessian_equals_finite_differences(population) -> None:
    data, spend = population
    repeat = data["frequency"].to_numpy() > 0
    x, m = data["frequency"].to_numpy(float)[repeat], np.asarray(spend)[repeat]
    lik = GammaGammaLikelihood(x, m, np.random.default_rng(2).uniform(0.5, 2.0, len(x)))
    theta = np.array([6.0, 3.5, 15.0])
    numeric = numerical_hessian(lambda p: lik.value_and_gradient(p)[1], theta)
    np.testing.assert_allclose(lik.hessian(theta), numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_bgnbd_large_fit_equals_lifetimes(population) -> None:
    data, _ = population
    x, t_x, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    ours = BetaGeoModel().fit(x, t_x, T)
    theirs = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-4), name
    their_ll = -lifetimes.BetaGeoFitter._negative_log_likelihood(
        np.log(theirs.params_[["r", "alpha", "a", "b"]].to_numpy(float)), x, t_x, T, np.ones(len(x)), 0.0) * len(x)
    assert ours.log_likelihood_ >= their_ll - 1e-6 * abs(their_ll)
    assert ours.log_likelihood_ == pytest.approx(their_ll, rel=1e-6)
    np.testing.assert_allclose(np.diag(ours.variance_matrix_), np.diag(theirs.variance_matrix_), rtol=1e-2)


def test_gamma_gamma_large_fit_equals_lifetimes() -> None:
    x = np.random.default_rng(6).integers(1, 12, 60_000)
    m = np.asarray(simulate_spend(x, p=6.0, q=3.5, v=15.0, seed=7))
    x = x.astype(float)
    assert len(x) >= FitSettings().subsample_from
    ours = GammaGammaModel().fit(x, m)
    theirs = lifetimes.GammaGammaFitter().fit(x, m)
    for name in ("p", "q", "v"):
        assert ours.params_[name] == pytest.approx(theirs.params_[name], rel=1e-4), name


def test_subsample_path_reaches_the_full_search_optimum(population) -> None:
    data, _ = population
    lik = BetaGeoLikelihood(data["frequency"], data["recency"], data["T"], np.ones(len(data)))
    scales = np.array([1.0, float(data["T"].max()), 1.0, 1.0])
    shortcut = fit_log_params(lik, ("r", "alpha", "a", "b"), scales, FitSettings(), "BG/NBD")
    full = fit_log_params(lik, ("r", "alpha", "a", "b"), scales, FitSettings(subsample_from=10**9), "BG/NBD")
    np.testing.assert_allclose(shortcut, full, rtol=1e-6)


def test_newton_gives_up_where_the_hessian_is_not_positive_definite() -> None:
    class Saddle:
        total_weight, n_rows = 1.0, 1

        def value_and_gradient(self, p):
            u, v = np.log(p)
            return -(u**2 - v**2), -np.array([2 * u, -2 * v]) / p

        def hessian(self, p):
            return np.diag([-2.0, 2.0]) / p**2  # not negative definite: no maximum

    assert newton_refine(_LogObjective(Saddle(), np.ones(2), 0.0), np.array([0.3, 0.2]), 10) is None
