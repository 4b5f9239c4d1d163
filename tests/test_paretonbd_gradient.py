"""Pareto/NBD per-row log-likelihood and analytic gradient against mpmath at 40 digits.

The truth is independent of the code's formulas: the FHL note's likelihood (eq. 1) with
its integral in the note's 2F1 form (eq. 3) evaluated by mpmath, and ``mpmath.diff``
(numerical differentiation at raised precision) for the derivatives; the code uses neither
the 2F1 nor differences. The grid is hostile: many purchases, alpha/beta ratios
that put the FHL note's 2F1 argument at z = 0.999, t_x = 0 and t_x within 1e-4 of T, short
and long T.
"""
from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np
import pytest

from custscore.training.paretonbd import ParetoNBDModel, pareto_nbd_rows

R, S = 0.55, 0.6
#: (alpha, beta): k = |alpha - beta| / (max + t_x) reaches 0.999 at t_x = 0 both ways round
RATES = [(10.0, 12.0), (1000.0, 1.0), (1.0, 1000.0), (5.0, 0.5)]
#: (t_x, T): t_x = 0, t_x near T, short and long T, t_x = T (alive for sure)
WINDOWS = [(0.0, 0.5), (0.0, 5000.0), (0.4999, 0.5), (4999.9, 5000.0), (2.0, 5000.0), (5000.0, 5000.0)]
COUNTS = [0, 1, 5, 30, 100, 300]


def _mp_log_likelihood(r, alpha, s, beta, x, t_x, T):
    """FHL note eq. 1 at mpmath precision, the integral as the difference of eq. 3's 2F1 tails.

    (mpmath's ``quad`` of the integral itself, split at t_x + d 2^k, was off by up to 3e-11
    relative on this grid, e.g. x = 100, alpha = 5, beta = 0.5, T = 0.5, where the 2F1 tails
    and this module's quadrature agree to 2e-14.)
    """
    C = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
    A = -(r + x) * mp.log(alpha + T) - s * mp.log(beta + T)
    if t_x == T:
        return C + A
    p, q = r + x, s + 1
    c = p + q

    def tail(tau):  # int_tau^inf (alpha+u)**-p (beta+u)**-q du
        if alpha >= beta:
            return mp.hyp2f1(c - 1, q, c, (alpha - beta) / (alpha + tau)) / ((c - 1) * (alpha + tau) ** (c - 1))
        return mp.hyp2f1(c - 1, p, c, (beta - alpha) / (beta + tau)) / ((c - 1) * (beta + tau) ** (c - 1))

    return C + mp.log(mp.exp(A) + s * (tail(t_x) - tail(T)))


def _truth(x, alpha, beta, t_x, T):
    with mp.workdps(40):  # t_x = 4999.9, T = 5000: the tails' difference loses 5 of the 40 digits
        theta = [mp.mpf(v) for v in (R, alpha, S, beta)]
        rows = (x, mp.mpf(t_x), mp.mpf(T))
        value = _mp_log_likelihood(*theta, *rows)
        grad = [mp.diff(lambda v, j=j: _mp_log_likelihood(*(theta[:j] + [v] + theta[j + 1:]), *rows), theta[j])
                for j in range(4)]
        return float(value), [float(g) for g in grad]


def _ours(x, alpha, beta, t_x, T):
    value, grad = pareto_nbd_rows([R, alpha, S, beta], np.array([x], float), np.array([t_x]), np.array([T]))
    return float(value[0]), [float(g[0]) for g in grad]


def _rounding(x, alpha, beta, T):
    """Float64 rounding of LL = C + logaddexp(A, B): 1e-14 of the size of its terms, plus 1e-12.

    (x = 300, T = 5000: |lnG(r+x)| + (r+x) ln(alpha+T) ~ 4000, so 4e-11; 1e-12 of the likelihood itself at most
    when the terms are small.)
    """
    terms = abs(float(mp.loggamma(R + x))) + (R + x) * abs(np.log(alpha + T)) + S * abs(np.log(beta + T))
    return 1e-14 * terms + 1e-12


def _grid():
    return [(x, a, b, tx, T) for x, (a, b), (tx, T) in itertools.product(COUNTS, RATES, WINDOWS)
            if not (x == 0 and tx > 0)]


def _check(x, alpha, beta, t_x, T):
    value, grad = _ours(x, alpha, beta, t_x, T)
    true_value, true_grad = _truth(x, alpha, beta, t_x, T)
    assert abs(value - true_value) <= _rounding(x, alpha, beta, T)
    for j, (g, t) in enumerate(zip(grad, true_grad)):
        assert g == pytest.approx(t, rel=1e-8), ("r alpha s beta".split()[j], g, t)


@pytest.mark.parametrize("row", _grid())
def test_gradient_equals_mpmath_on_the_hostile_grid(row):
    _check(*row)


def test_scipy_hyp2f1_overflow_row_has_a_finite_likelihood():
    """x = 300, z = 0.999: the FHL note's 2F1 form is nan in scipy; the likelihood, its gradient and the
    repaired band integral (used by the predictions) are mpmath's."""
    from custscore.training.paretonbd import log_band_from_tails, log_band_integral, log_tail_integral

    row = (300, 1.0, 1000.0, 0.0, 0.5)
    args = (300 + R, S + 1.0, 1.0, 1000.0)
    with np.errstate(invalid="ignore"):
        assert np.isnan(log_band_from_tails(log_tail_integral(*args, 0.0), log_tail_integral(*args, 0.5)))
    value, grad = _ours(*row)
    true_value, true_grad = _truth(*row)
    assert abs(value - true_value) <= _rounding(*row[:3], row[4])
    assert grad == pytest.approx(true_grad, rel=1e-8)
    with mp.workdps(40):
        p, q = mp.mpf(R) + 300, mp.mpf(S) + 1
        truth = mp.log(mp.quad(lambda u: (1 + u) ** -p * (1000 + u) ** -q, mp.linspace(0, 0.5, 50)))
    assert float(log_band_integral(*args, 0.0, 0.5)) == pytest.approx(float(truth), rel=1e-13)


def test_covariate_fit_uses_the_analytic_gradient(monkeypatch):
    """The covariate likelihood takes value and gradient from one pass of the rows, never differences."""
    from custscore.training import purchase_models

    def refuse(*args, **kwargs):
        raise AssertionError("central differences used")

    monkeypatch.setattr(purchase_models, "row_gradient_by_differences", refuse)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 1))
    lik = purchase_models.CovariateLikelihood(ParetoNBDModel(), rng.poisson(2, 200).astype(float),
                                              np.full(200, 3.0), np.full(200, 10.0), np.ones(200), z)
    value, grad = lik.value_and_gradient(np.array([0.5, 5.0, 0.6, 8.0, 0.1, -0.1]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_p_alive_where_scipy_hyp2f1_overflows():
    """The no-dropout world's fit (s -> 0, beta -> 1e7 days along the ridge): scipy's 2F1 overflows for
    x ~ 70; P(alive) is still mpmath's e^A / (e^A + s I), and exactly 1 when t_x = T."""
    params = {"r": 0.8265332923479667, "alpha": 42.26553501745981, "s": 2.7499153364880187e-06,
              "beta": 24771661.92476838}
    model = ParetoNBDModel()
    model.params_ = params
    x, t_x, T = np.array([71.0, 70.0, 5.0]), np.array([475.0, 461.0, 100.0]), np.array([483.0, 461.0, 483.0])
    got = model.p_alive(x, t_x, T)
    with mp.workdps(40):
        theta = [mp.mpf(params[k]) for k in ("r", "alpha", "s", "beta")]
        for i in range(3):
            C = mp.loggamma(theta[0] + x[i]) - mp.loggamma(theta[0]) + theta[0] * mp.log(theta[1]) \
                + theta[2] * mp.log(theta[3])
            A = -(theta[0] + x[i]) * mp.log(theta[1] + T[i]) - theta[2] * mp.log(theta[3] + T[i])
            truth = mp.exp(C + A - _mp_log_likelihood(*theta, x[i], mp.mpf(t_x[i]), mp.mpf(T[i])))
            assert got[i] == pytest.approx(float(truth), rel=1e-10), i
    assert got[1] == 1.0


def test_value_and_gradient_after_the_hessian_are_the_ones_of_a_fresh_pass():
    """Newton asks the Hessian, then value and gradient at the same point: both likelihoods answer the
    second from what the first computed (fitting.PointMemo), equal to a pass over the rows by a new
    likelihood; a gradient the caller modifies does not change what is remembered."""
    from custscore.training import purchase_models
    from custscore.training.paretonbd import ParetoNBDLikelihood

    rng = np.random.default_rng(4)
    x, t_x, T, w, z = rng.poisson(2, 300).astype(float), np.full(300, 3.0), np.full(300, 10.0), np.ones(300), \
        rng.normal(size=(300, 1))
    for make, params in ((lambda: ParetoNBDLikelihood(x, t_x, T, w), np.array([0.5, 5.0, 0.6, 8.0])),
                         (lambda: purchase_models.CovariateLikelihood(ParetoNBDModel(), x, t_x, T, w, z),
                          np.array([0.5, 5.0, 0.6, 8.0, 0.1, -0.1]))):
        truth = make().value_and_gradient(params)
        remembered = make()
        remembered.hessian(params)
        value, grad = remembered.value_and_gradient(params)
        grad[:] = 0.0
        again = remembered.value_and_gradient(params)
        assert value == pytest.approx(truth[0], rel=1e-12)
        assert again[1] == pytest.approx(truth[1], rel=1e-10)
