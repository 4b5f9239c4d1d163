"""Pareto/NBD per-row analytic Hessian against mpmath at 40 digits, and the fit that uses it.

The truth is :mod:`test_paretonbd_gradient`'s (the FHL note's likelihood with its 2F1 tails in
mpmath, on its hostile grid), differentiated twice by ``mpmath.diff``; the code uses neither the
2F1 nor differences.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from test_paretonbd_gradient import R, S, _grid, _mp_log_likelihood

from custscore.training.fitting import numerical_hessian
from custscore.training.paretonbd import (ParetoNBDLikelihood, ParetoNBDModel, pareto_nbd_rows,
                                          pareto_nbd_rows_hessian)

NAMES = ("r", "alpha", "s", "beta")


def _true_hessian(x, alpha, beta, t_x, T):
    with mp.workdps(40):
        theta = [mp.mpf(v) for v in (R, alpha, S, beta)]

        def f(*th):
            return _mp_log_likelihood(*th, x, mp.mpf(t_x), mp.mpf(T))

        out = np.empty((4, 4))
        for i in range(4):
            for j in range(i, 4):
                orders = [0] * 4
                orders[i] += 1
                orders[j] += 1
                out[i, j] = out[j, i] = float(mp.diff(f, theta, tuple(orders)))
        return out


@pytest.mark.parametrize("row", _grid())
def test_hessian_equals_mpmath_on_the_hostile_grid(row):
    """Every entry to 1e-7 relative, the tiny ones included (d2/ds2 is -3.4e-19 at x = 1,
    alpha = 1, beta = 1000, t_x = 0.4999, T = 0.5, where P(died in the band) is ~1e-10); value and
    gradient identical to :func:`pareto_nbd_rows`'. (Entries that are 0 exactly, e.g. d2/ds2 when t_x = T,
    come out of ``mpmath.diff`` as 40-digit noise of ~1e-51: ``abs=1e-40``.)"""
    x, alpha, beta, t_x, T = row
    rows = (np.array([x], float), np.array([t_x]), np.array([T]))
    value, grad, hess = pareto_nbd_rows_hessian([R, alpha, S, beta], *rows)
    plain_value, plain_grad = pareto_nbd_rows([R, alpha, S, beta], *rows)
    assert np.array_equal(value, plain_value) and all(np.array_equal(a, b) for a, b in zip(grad, plain_grad))
    truth = _true_hessian(*row)
    ours = hess[:, :, 0]
    assert np.array_equal(ours, ours.T)
    for i in range(4):
        for j in range(i, 4):
            assert ours[i, j] == pytest.approx(truth[i, j], rel=1e-7, abs=1e-40), (NAMES[i], NAMES[j], ours[i, j],
                                                                                 truth[i, j])


def test_hessian_equals_differences_of_the_gradient_on_cdnow(cdnow_weeks):
    """The weighted Hessian on CDNOW (weeks) at the published fit, against central differences of the
    analytic gradient (the fit's Hessian before): equal to ~1e-6 of each entry."""
    x, t_x, T = cdnow_weeks
    lik = ParetoNBDLikelihood(x, t_x, T, np.ones(len(x)))
    theta = np.array([0.553, 10.578, 0.606, 11.669])
    analytic = lik.hessian(theta)
    differences = numerical_hessian(lambda p: ParetoNBDLikelihood(x, t_x, T, np.ones(len(x))).value_and_gradient(p)[1],
                                    theta)
    np.testing.assert_allclose(analytic, differences, rtol=1e-6)
    assert np.array_equal(analytic, analytic.T)
    value, grad = lik.value_and_gradient(theta)  # from the Hessian's pass, equal to a fresh one
    fresh = ParetoNBDLikelihood(x, t_x, T, np.ones(len(x))).value_and_gradient(theta)
    assert value == fresh[0] and np.array_equal(grad, fresh[1])


def test_cdnow_fit_and_standard_errors_unchanged(cdnow_weeks, monkeypatch):
    """Same optimum and standard errors (to 1e-5 relative) as the fit whose Hessian is differences."""
    analytic = ParetoNBDModel().fit(*cdnow_weeks)
    monkeypatch.setattr(ParetoNBDLikelihood, "hessian",
                        lambda self, p: numerical_hessian(lambda q: self.value_and_gradient(q)[1], np.asarray(p)))
    differenced = ParetoNBDModel().fit(*cdnow_weeks)
    for name in NAMES:
        assert analytic.params_[name] == pytest.approx(differenced.params_[name], rel=1e-7)
        assert analytic.diagnostics_["standard_errors"][name] == pytest.approx(
            differenced.diagnostics_["standard_errors"][name], rel=1e-5)


def test_covariate_hessian_chains_the_row_hessian(monkeypatch):
    """The covariate likelihood's Hessian (chain rule through the per-row Hessian) equals central differences
    of its chain-ruled gradient to 1e-7 per entry, without differencing; its value and gradient at that
    point are the plain pass's."""
    from custscore.training import purchase_models

    rng = np.random.default_rng(3)
    n = 3000
    z = rng.normal(size=(n, 2))
    x = rng.poisson(2, n).astype(float)
    T = rng.uniform(5, 40, n).round(1)
    t_x = np.where(x > 0, T * rng.uniform(size=n), 0.0).round(1)

    def likelihood():
        return purchase_models.CovariateLikelihood(ParetoNBDModel(), x, t_x, T, np.ones(n), z)

    params = np.array([0.5, 5.0, 0.6, 8.0, 0.1, -0.2, 0.3, 0.05])
    floor = np.where(np.arange(8) < 4, 1e-8, 1.0)
    differences = numerical_hessian(lambda p: likelihood().value_and_gradient(p)[1], params, floor)
    lik = likelihood()
    monkeypatch.setattr(purchase_models, "numerical_hessian", None)  # the chained path must not difference
    analytic = lik.hessian(params)
    np.testing.assert_allclose(analytic, differences, rtol=1e-7)
    assert np.array_equal(analytic, analytic.T)
    value, grad = lik.value_and_gradient(params)
    fresh = likelihood().value_and_gradient(params)
    assert value == fresh[0] and np.array_equal(grad, fresh[1])
