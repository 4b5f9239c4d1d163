"""BG/NBD: the beta-geometric / negative-binomial model of repeat purchasing.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy
Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284 (FHL 2005).

While alive a customer makes repeat purchases as a Poisson process with rate
``lambda ~ Gamma(shape r, rate alpha)``; after each repeat purchase they drop out with
probability ``p ~ Beta(a, b)``. Per customer the inputs are ``frequency`` x (repeat
purchases), ``recency`` t_x (time of the last purchase since the first) and ``T`` (time
since the first purchase), all in one time unit of the caller's choosing; ``alpha`` is
reported in that unit (``r``, ``a``, ``b`` are unit-free).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, hyp2f1

from custscore.errors import CustscoreError, FitError
from custscore.training.fitting import (
    ESTIMATOR_CONSTRAINTS,
    check_hyperparameters,
    check_rfm,
    check_weights,
    fit_log_params,
    inverse_or_none,
    numerical_hessian,
    total_weight,
    unique_inverse,
    unique_rows,
)

PARAM_NAMES = ("r", "alpha", "a", "b")
#: Fewer customers than this cannot identify four parameters: refuse rather than guess.
MIN_CUSTOMERS = 10
#: From this many customers, conditional expectations are computed on distinct (x, T) pairs.
_DEDUPE_FROM = 10_000


def bgnbd_log_likelihood(
    params_array: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its analytic gradient in natural parameters.

    FHL 2005 eq. 6 in log form: with ``theta = (r, alpha, a, b)``

    - A1 = lnG(r+x) - lnG(r) + r ln(alpha)
    - A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)
    - A3 = -(r+x) ln(alpha+T)
    - A4 = ln(a) - ln(b+x-1) - (r+x) ln(alpha+t_x)   (only for x > 0)
    - LL = A1 + A2 + logaddexp(A3, A4)

    Returns ``(sum_i w_i LL_i, d/dtheta of that sum)``, the gradient of shape ``(4,)``.
    With ``w3, w4`` the softmax weights of ``(A3, A4)`` (``w4 = 0`` when x = 0):

    - dLL/dr     = psi(r+x) - psi(r) + ln(alpha) - w3 ln(alpha+T) - w4 ln(alpha+t_x)
    - dLL/dalpha = r/alpha - (r+x) (w3/(alpha+T) + w4/(alpha+t_x))
    - dLL/da     = psi(a+b) - psi(a+b+x) + w4/a
    - dLL/db     = psi(a+b) + psi(b+x) - psi(b) - psi(a+b+x) - w4/(b+x-1)

    >>> ll, grad = bgnbd_log_likelihood(np.array([0.243, 4.414, 0.793, 2.426]),
    ...     np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86]), np.ones(2))
    >>> round(ll, 4)
    -10.0133
    """
    r, alpha, a, b = (float(v) for v in params_array)
    # Terms that depend on a customer only through x (a whole number) are evaluated once
    # per distinct x and summed with the weights of those customers; per row there remain
    # two logs, a log-sum-exp and two exps.
    xi = x.astype(np.int64)
    w_by_x = np.bincount(xi, weights=weights)
    xs = np.arange(len(w_by_x), dtype=float)
    bx1_by_x = np.where(xs > 0, b + xs - 1.0, 1.0)  # b + x - 1 only enters for x > 0
    has_repeat = x > 0
    rx = r + x
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)

    a3 = -rx * log_alpha_T
    a4 = np.where(has_repeat, np.log(a) - np.log(bx1_by_x)[xi] - rx * log_alpha_tx, -np.inf)
    l34 = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - l34)
    w4 = np.exp(a4 - l34)  # exactly 0 where x == 0
    ww3, ww4 = weights * w3, weights * w4

    sum_w = float(np.sum(weights))
    per_x_ll = gammaln(r + xs) + gammaln(b + xs) - gammaln(a + b + xs)
    ll = (float(np.sum(w_by_x * per_x_ll)) + sum_w * (r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b))
          + float(np.sum(weights * l34)))

    psi_ab = digamma(a + b)
    psi_abx_by_x = digamma(a + b + xs)
    d_r = (float(np.sum(w_by_x * digamma(r + xs))) + sum_w * (np.log(alpha) - digamma(r))
           - float(np.sum(ww3 * log_alpha_T)) - float(np.sum(ww4 * log_alpha_tx)))
    d_alpha = sum_w * r / alpha - float(np.sum(rx * (ww3 / (alpha + T) + ww4 / (alpha + t_x))))
    d_a = sum_w * psi_ab - float(np.sum(w_by_x * psi_abx_by_x)) + float(np.sum(ww4)) / a
    d_b = (sum_w * (psi_ab - digamma(b)) + float(np.sum(w_by_x * (digamma(b + xs) - psi_abx_by_x)))
           - float(np.sum(ww4 / bx1_by_x[xi])))
    return float(ll), np.array([d_r, d_alpha, d_a, d_b], dtype=float)


class BetaGeoModel:
    """BG/NBD model (FHL 2005) with a scikit-learn style estimator contract.

    Parameters
    ----------
    penalizer:
        L2 penalty ``penalizer * (r**2 + alpha_s**2 + a**2 + b**2)`` added to the mean
        negative log-likelihood per customer, as in lifetimes' ``BetaGeoFitter``. ``alpha_s``
        is alpha in the internal time unit (the largest ``T`` is 1), so the penalty does not
        depend on the caller's unit and equals lifetimes' for the same data. 0 = plain MLE.
    n_starts:
        Optimiser starts (the default start plus jittered ones).
    seed:
        Seed of the jitter.

    Fitted attributes: ``params_`` (dict r, alpha, a, b; alpha in the caller's time unit),
    ``log_likelihood_`` (unpenalised, summed over customers, in the caller's unit),
    ``variance_matrix_`` (DataFrame, inverse Hessian of the unpenalised negative
    log-likelihood in natural parameters, or ``None`` if that Hessian is not positive
    definite), ``n_customers_`` (sum of weights).

    >>> import numpy as np
    >>> m = BetaGeoModel()
    >>> m.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> m.p_alive([2, 0], [30.43, 0.0], [38.86, 38.86]).round(4).tolist()
    [0.7266, 1.0]
    """

    def __init__(self, *, penalizer: float = 0.0, n_starts: int = 5, seed: int = 0) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> "BetaGeoModel":
        """Fit by maximum likelihood; ``weights`` are the number of customers each row stands for.

        Inputs are validated before any casting (see :func:`custscore.training.fitting.check_rfm`);
        identical ``(x, t_x, T)`` rows are collapsed into one row with summed weights.
        Raises :class:`FitError` if there are no customers, no repeat purchase at all, or
        the optimiser does not converge.
        """
        check_hyperparameters(
            {"penalizer": self.penalizer, "n_starts": self.n_starts, "seed": self.seed}, ESTIMATOR_CONSTRAINTS
        )
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        w = check_weights(weights, len(x))
        if total_weight(w) < MIN_CUSTOMERS:
            raise FitError(f"cannot fit BG/NBD: need at least {MIN_CUSTOMERS} customers, got {total_weight(w)}")
        if not np.any(x > 0):
            raise FitError("cannot fit BG/NBD: no customer has a repeat purchase")

        (ux, utx, uT), uw = unique_rows([x, t_x, t_cal], w)
        scale = float(uT.max())  # internal time unit: the largest T becomes 1
        stx, sT = utx / scale, uT / scale
        params = fit_log_params(lambda th: bgnbd_log_likelihood(th, ux, stx, sT, uw), PARAM_NAMES,
                                float(uw.sum()), float(self.penalizer), self.n_starts, self.seed, "BG/NBD")
        params[1] *= scale  # alpha back to the caller's time unit

        self.params_ = {name: float(v) for name, v in zip(PARAM_NAMES, params)}
        self.log_likelihood_ = bgnbd_log_likelihood(params, ux, utx, uT, uw)[0]
        hessian = numerical_hessian(lambda th: -bgnbd_log_likelihood(th, ux, utx, uT, uw)[1], params)
        inv = inverse_or_none(hessian)
        self.variance_matrix_ = (
            None if inv is None else pd.DataFrame(inv, index=list(PARAM_NAMES), columns=list(PARAM_NAMES))
        )
        self.n_customers_ = total_weight(w)
        return self

    # ------------------------------------------------------------------ predictions

    def _params(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise FitError("BetaGeoModel is not fitted yet: call fit first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def log_likelihood_per_customer(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Log-likelihood of each customer's ``(x, t_x, T)``, FHL 2005 eq. 6 in log form.

        Uses log-sum-exp and ``scipy.special.gammaln``. Shape ``(n_customers,)``.
        """
        r, alpha, a, b = self._params()
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        has_repeat = x > 0
        bx1 = np.where(has_repeat, b + x - 1.0, 1.0)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + t_cal)
        a4 = np.where(has_repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Probability that each customer is still alive at ``T``.

        FHL 2005 eq. 13 (also Fader, Hardie and Lee, "Computing P(alive) using the BG/NBD
        model", note 021): ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))**(r+x))``,
        1 for customers with no repeat purchase. Shape ``(n_customers,)``, values in [0, 1].
        """
        r, alpha, a, b = self._params()
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        has_repeat = x > 0
        bx1 = np.where(has_repeat, b + x - 1.0, 1.0)
        log_odds_dead = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_x))
        # 1 / (1 + exp(z)) computed without overflow.
        return np.where(has_repeat, np.exp(-np.logaddexp(0.0, log_odds_dead)), 1.0)

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Expected number of repeat purchases in ``(T, T + t]`` given ``(x, t_x, T)``.

        FHL 2005 eq. 10::

            E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1)
                * [1 - ((alpha+T)/(alpha+T+t))**(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
                / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))**(r+x))

        ``t`` (same unit as ``T``) is a scalar or broadcasts against the customers.
        ``(1-z)**(r+x) 2F1(...)`` is evaluated via Euler's transformation as
        ``(1-z)**(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, which stays bounded for large x or t
        (the direct form overflows). Shape ``(n_customers,)``.
        """
        r, alpha, a, b = self._params()
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        if np.any(~np.isfinite(t)) or np.any(t < 0):
            raise CustscoreError(f"t: must be finite and >= 0, got {t!r}")
        if t.ndim == 0 and x.size > _DEDUPE_FROM:
            # The bracket depends on (x, T) only: evaluate hyp2f1 once per distinct pair
            # (tens of thousands for millions of customers counted in days).
            (ux, uT), inverse = unique_inverse([x, t_cal])
            numerator = self._conditional_bracket(t, ux, uT)[inverse]
        else:
            numerator = self._conditional_bracket(t, x, t_cal)
        return numerator * self.p_alive(x, t_x, t_cal)

    def discounted_expected_purchases(self, step_ends: Any, discount_factors: Any, frequency: Any, recency: Any,
                                      T: Any) -> np.ndarray:
        """``sum_k [E(end_k) - E(end_{k-1})] * discount_factors[k]`` per customer, E from eq. 10.

        ``step_ends`` (increasing, same unit as ``T``) and ``discount_factors`` have one
        value per step. Eq. 10 is P(alive) times a bracket that depends on ``(x, T)``
        only, so the discounted sum of bracket increments is evaluated once per distinct
        ``(x, T)`` pair and multiplied by P(alive). Shape ``(n_customers,)``.
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        ends = np.atleast_1d(np.asarray(step_ends, dtype=float))
        factors = np.atleast_1d(np.asarray(discount_factors, dtype=float))
        if ends.shape != factors.shape or np.any(np.diff(ends) <= 0) or np.any(ends < 0):
            raise CustscoreError("step_ends: must increase, be >= 0 and match discount_factors")
        (ux, uT), inverse = unique_inverse([x, t_cal])
        total, previous = np.zeros(len(ux)), np.zeros(len(ux))
        for end, factor in zip(ends, factors):
            cumulative = self._conditional_bracket(np.asarray(end), ux, uT)
            total += (cumulative - previous) * factor
            previous = cumulative
        return total[inverse] * self.p_alive(x, t_x, t_cal)

    def _conditional_bracket(self, t: np.ndarray, x: np.ndarray, t_cal: np.ndarray) -> np.ndarray:
        """``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))**(r+x) 2F1(...)]`` of eq. 10."""
        r, alpha, a, b = self._params()
        z = t / (alpha + t_cal + t)
        c = a + b + x - 1.0
        hyp_term = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        return c / (a - 1.0) * (1.0 - hyp_term)

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        """Unconditional expected repeat purchases in ``(0, t]`` of a new customer, FHL 2005 eq. 9.

        ``E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))**r 2F1(r, b; a+b-1; t/(alpha+t))]``.
        Shape ``t.shape`` (at least 1-D).
        """
        r, alpha, a, b = self._params()
        t = np.atleast_1d(np.asarray(t, dtype=float))
        z = t / (alpha + t)
        # Euler's transformation, as in expected_purchases: (1-z)**r 2F1(r, b; a+b-1; z)
        # = (1-z)**(a-1) 2F1(a+b-1-r, a-1; a+b-1; z).
        hyp_term = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
        return (a + b - 1.0) / (a - 1.0) * (1.0 - hyp_term)
