"""Pareto/NBD: Poisson purchases while alive, exponential lifetimes, gamma heterogeneity in both.

Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your Customers: Who
Are They and What Will They Do Next?", Management Science 33(1), 1-24 (SMC 1987); the
likelihood in the numerically stable form of Fader, P. S., Hardie, B. G. S. and Lee, K. L.
(2005), "A Note on Implementing the Pareto/NBD Model in MATLAB" (FHL note, eqs. 1-3).

While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(shape r,
rate alpha)`` and dies at an exponential time with rate ``mu ~ Gamma(shape s, rate
beta)``. Inputs ``frequency`` x, ``recency`` t_x and ``T`` are in one time unit of the
caller's choosing; ``alpha`` and ``beta`` are in that unit (``r``, ``s`` are unit-free).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.special import gammaln, hyp2f1

from custscore.training.diagnostics import generic_warnings
from custscore.training.fitting import check_rfm
from custscore.training.purchase_models import (DistinctPairs, MaximumLikelihoodPurchaseModel, RowLikelihood,
                                                check_horizon, log_nbd_coefficients, log_nbd_pmf, on_pairs,
                                                row_gradient_by_differences)

PARAM_NAMES = ("r", "alpha", "s", "beta")
PROCESSES = {"r": "purchase rate", "alpha": "purchase rate", "s": "dropout", "beta": "dropout"}
_CONSEQUENCE = "P(alive), expected purchases and CLV are uncertain; compare them with days since last purchase"
#: Gauss-Legendre nodes of the integral over the death time in :meth:`ParetoNBDModel._pmf_if_alive`.
_PMF_NODES = 48


def log_tail_integral(p: Any, q: Any, alpha: Any, beta: Any, tau: Any) -> np.ndarray:
    """``ln int_tau^inf (alpha+u)**-p (beta+u)**-q du`` (p + q > 1), the FHL note's A0 pieces.

    ``= 2F1(p+q-1, q; p+q; (alpha-beta)/(alpha+tau)) / ((p+q-1) (alpha+tau)**(p+q-1))`` for
    alpha >= beta, and with (alpha, q) and (beta, p) swapped otherwise (FHL note, eq. 3),
    so the 2F1 argument is always in ``[0, 1)``. In log space.
    """
    p, q, alpha, beta, tau = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, alpha, beta, tau)))
    a_ge_b = alpha >= beta
    base = np.where(a_ge_b, alpha, beta) + tau
    second = np.where(a_ge_b, q, p)
    c = p + q
    z = np.abs(alpha - beta) / base
    return np.log(hyp2f1(c - 1.0, second, c, z)) - (c - 1.0) * np.log(base) - np.log(c - 1.0)


def log_band_integral(p: Any, q: Any, alpha: Any, beta: Any, lo: Any, hi: Any) -> np.ndarray:
    """``ln int_lo^hi (alpha+u)**-p (beta+u)**-q du`` (-inf when lo == hi), from :func:`log_tail_integral`."""
    return log_band_from_tails(log_tail_integral(p, q, alpha, beta, lo), log_tail_integral(p, q, alpha, beta, hi))


def log_band_from_tails(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``ln(exp(upper) - exp(lower))`` of two :func:`log_tail_integral` values (lower <= upper)."""
    with np.errstate(divide="ignore"):
        return upper + np.log1p(-np.exp(np.minimum(lower - upper, 0.0)))


def _log_parts(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C, A, B)`` with ``LL = C + logaddexp(A, B)`` (FHL note, eq. 1 in logs).

    - C = lnG(r+x) - lnG(r) + r ln(alpha) + s ln(beta)
    - A = -(r+x) ln(alpha+T) - s ln(beta+T)   (alive at T)
    - B = ln(s) + ln int_{t_x}^T (alpha+u)**-(r+x) (beta+u)**-(s+1) du   (died in (t_x, T])

    ``params`` hold scalars or per-row arrays (covariates).
    """
    r, alpha, s, beta = (np.asarray(v, dtype=float) for v in params)
    C = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    A = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    B = np.log(s) + log_band_integral(r + x, s + 1.0, alpha, beta, t_x, T)
    return C, A, B


def pareto_nbd_log_likelihood_rows(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-row Pareto/NBD log-likelihood ``ln L(r, alpha, s, beta | x, t_x, T)``, shape of ``x``."""
    with np.errstate(divide="ignore"):
        C, A, B = _log_parts(params, x, t_x, T)
    return C + np.logaddexp(A, B)


class ParetoNBDLikelihood(RowLikelihood):
    """The weighted Pareto/NBD log-likelihood; gradient by central differences in relative steps.

    The 2F1 in the likelihood has no closed-form derivative in its parameters, so each
    gradient component is ``[LL(theta (1 + h e_j)) - LL(theta (1 - h e_j))] / (2 h theta_j)``
    with ``h = 1e-5`` (truncation and rounding errors both ~1e-10 relative;
    :func:`~custscore.training.purchase_models.row_gradient_by_differences`).
    """

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        theta = list(np.asarray(params, dtype=float))
        rows = (self.x, self.t_x, self.T)
        value = float(np.dot(self.w, pareto_nbd_log_likelihood_rows(theta, *rows)))
        per_row = row_gradient_by_differences(pareto_nbd_log_likelihood_rows, theta, *rows)
        return value, np.array([float(np.dot(self.w, g)) for g in per_row])


class ParetoNBDModel(MaximumLikelihoodPurchaseModel):
    """Pareto/NBD model (SMC 1987; FHL note) on the shared fit (:class:`MaximumLikelihoodPurchaseModel`).

    Hyper-parameters and fitted attributes as :class:`~custscore.training.bgnbd.BetaGeoModel`;
    ``params_`` r, alpha, s, beta (alpha, beta in the caller's time unit).

    >>> m = ParetoNBDModel()
    >>> m.params_ = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    >>> m.expected_purchases(52.0, [26], [30.86], [31.0]).round(2).tolist()
    [25.46]
    """

    PARAM_NAMES = PARAM_NAMES
    KEY = "pnbd"
    MODEL_NAME = "Pareto/NBD"
    PARAM_PREFIX = "pnbd_"
    TIME_PARAMS = ("alpha", "beta")
    #: Fader and Hardie (2007, note 019): ``alpha_i = alpha0 exp(-gamma_alpha' z_i)`` (purchase),
    #: ``beta_i = beta0 exp(-gamma_beta' z_i)`` (dropout); a positive coefficient raises the rate.
    COVARIATE_LINKS = (("alpha", -1.0), ("beta", -1.0))
    PROCESSES = PROCESSES
    #: each row costs two 2F1 per likelihood evaluation and a fit takes hundreds: merging always pays
    MERGE_ROWS_UP_TO = None

    def _likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> ParetoNBDLikelihood:
        return ParetoNBDLikelihood(x, t_x, T, w)

    def _row_log_likelihood(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        return pareto_nbd_log_likelihood_rows(theta, x, t_x, T)

    def _warnings(self) -> list[str]:
        return generic_warnings("Pareto/NBD", self.diagnostics_, self.params_, self._processes(), _CONSEQUENCE)

    def log_likelihood_per_customer(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Log-likelihood of each customer's ``(x, t_x, T)`` (FHL note, eq. 1). Shape ``(n_customers,)``."""
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        return pareto_nbd_log_likelihood_rows(self._params(covariates, len(x)), x, t_x, t_cal)

    def p_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """P(alive at T | x, t_x, T) = the alive term's share of the likelihood, ``exp(A - logaddexp(A, B))`` (SMC 1987, eq. 11).

        ``A`` and ``B`` as in the likelihood (FHL note, eq. 1), with ``A`` and the 2F1 of ``B``
        at ``T`` evaluated once per distinct ``(x, T)`` and the 2F1 at ``t_x`` once per
        distinct ``(x, t_x)``: tens of thousands of pairs for millions of customers in days
        (per customer with covariates, :class:`~custscore.training.purchase_models.DistinctPairs`).
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        params = self._params(covariates, len(x))
        at_T, at_t_x = DistinctPairs(x, t_cal, params), DistinctPairs(x, t_x, params)

        def tail(pairs: DistinctPairs) -> np.ndarray:
            r, alpha, s, beta = pairs.params
            return pairs.expand(log_tail_integral(r + pairs.x, s + 1.0, alpha, beta, pairs.T))

        r, alpha, s, beta = at_T.params
        A = at_T.expand(-(r + at_T.x) * np.log(alpha + at_T.T) - s * np.log(beta + at_T.T))
        B = np.log(params[2]) + log_band_from_tails(tail(at_t_x), tail(at_T))
        return np.exp(A - np.logaddexp(A, B))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """Expected purchases in ``(T, T + t]`` if alive at T (SMC 1987, eq. 22, divided by P(alive))::

            (r+x) (beta+T) / ((alpha+T) (s-1)) [1 - ((beta+T)/(beta+T+t))**(s-1)]

        with the limit ``ln((beta+T+t)/(beta+T))`` of ``[...]/(s-1)`` at s = 1. ``t`` in the model's unit.
        """
        r, alpha, s, beta = params
        log_growth = np.log1p(t / (beta + T))
        if abs(s - 1.0) < 1e-12:
            factor = log_growth
        else:
            factor = -np.expm1(-(s - 1.0) * log_growth) / (s - 1.0)
        return (r + x) * (beta + T) / (alpha + T) * factor

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """P(no purchase in ``(T, T + t]``): dead at T, or alive and no purchase before dying or ``T + t``.

        Given alive at T, ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)``, and
        ``P(silent | lambda, mu) = exp(-(lambda+mu) t) + int_0^t mu exp(-(lambda+mu) u) du``, whose
        expectation is ``((alpha+T)/(alpha+T+t))**(r+x) ((beta+T)/(beta+T+t))**s + s (alpha+T)**(r+x)
        (beta+T)**s int_0^t (alpha+T+u)**-(r+x) (beta+T+u)**-(s+1) du`` (the likelihood's integral),
        a function of ``(x, T)`` (evaluated once per distinct pair).
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        alive = self.p_alive(x, t_x, t_cal, covariates)
        return (1.0 - alive) + alive * on_pairs(self._silent_if_alive, check_horizon(t), x, t_cal,
                                                self._params(covariates, len(x)))

    def _silent_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """P(no purchase in ``(T, T + t]`` | alive at T), see :meth:`p_no_purchase`."""
        r, alpha, s, beta = params
        a_T, b_T = alpha + T, beta + T
        log_both = (r + x) * np.log(a_T) + s * np.log(b_T)
        survive = np.exp(log_both - (r + x) * np.log(a_T + t) - s * np.log(b_T + t))
        with np.errstate(divide="ignore"):
            died = np.exp(np.log(s) + log_both + log_band_integral(r + x, s + 1.0, a_T, b_T, 0.0, t))
        return survive + died

    def _pmf_if_alive(self, t: float, k_max: int, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """P(k purchases in ``(T, T + t]`` | alive at T), numerically (no practical closed form).

        Given alive at T, ``lambda ~ Gamma(r+x, alpha+T)``, ``mu ~ Gamma(s, beta+T)`` and the
        customer buys Poisson(lambda) until death at ``u ~ Exp(mu)``. With ``NB_k(u)`` the
        negative binomial of :func:`~custscore.training.purchase_models.log_nbd_pmf` over a span u::

            P(X = k) = NB_k(t) ((beta+T)/(beta+T+t))**s + int_0^t s (beta+T)**s (beta+T+u)**-(s+1) NB_k(u) du

        (alive through the horizon, or died at u); the integral by Gauss-Legendre on
        :data:`_PMF_NODES` nodes. Shape ``(n, k_max + 1)``.
        """
        r, alpha, s, beta = params
        a_T, b_T = alpha + T, beta + T
        survive = np.exp(s * (np.log(b_T) - np.log(b_T + t)))[:, None]
        coefficients = log_nbd_coefficients(r + x, k_max)
        out = survive * np.exp(log_nbd_pmf(r + x, a_T, t, k_max, coefficients))
        nodes, weights = np.polynomial.legendre.leggauss(_PMF_NODES)
        for u, w in zip(0.5 * t * (nodes + 1.0), 0.5 * t * weights):
            density = s * np.exp(s * np.log(b_T) - (s + 1.0) * np.log(b_T + u))  # of death at T + u
            out += (w * density)[:, None] * np.exp(log_nbd_pmf(r + x, a_T, u, k_max, coefficients))
        return out
