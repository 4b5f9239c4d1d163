"""Gamma-Gamma model of the average spend per repeat transaction.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis", Journal of Marketing Research 42(4), 415-430 (the spend
sub-model); details in Fader and Hardie, "The Gamma-Gamma Model of Monetary Value"
(note 025, 2013).

Each transaction's spend is ``Gamma(shape p, rate nu)`` and ``nu ~ Gamma(shape q, rate v)``
across customers, so a customer's mean spend ``m`` over ``x`` transactions is
``Gamma(p x, rate x nu)``. The model assumes spend is independent of purchase frequency;
the caller should check that (correlation of ``m`` and ``x``) before using it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from custscore.errors import CustscoreError, FitError
from custscore.training.fitting import (
    ESTIMATOR_CONSTRAINTS,
    as_numeric_vector,
    check_frequency,
    check_hyperparameters,
    check_same_length,
    check_weights,
    fit_log_params,
    inverse_or_none,
    numerical_hessian,
    total_weight,
    unique_rows,
)

PARAM_NAMES = ("p", "q", "v")

#: Fewer customers (total weight) than this is refused: three parameters from a handful
#: of customers give standard errors larger than the estimates.
MIN_CUSTOMERS = 10


def gamma_gamma_log_likelihood(
    params_array: np.ndarray, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood of the mean spends and its analytic gradient.

    The marginal density of the mean spend ``m`` of ``x`` transactions (Fader and Hardie,
    note 025; FHL 2005 JMR, spend model), in log form::

        LL = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(xm+v)

    Gradient in natural parameters ``(p, q, v)``::

        dLL/dp = x [psi(px+q) - psi(px) + ln m + ln x - ln(xm+v)]
        dLL/dq = psi(px+q) - psi(q) + ln v - ln(xm+v)
        dLL/dv = q/v - (px+q)/(xm+v)

    Returns ``(sum_i w_i LL_i, gradient of shape (3,))``.

    >>> ll, grad = gamma_gamma_log_likelihood(np.array([6.25, 3.74, 15.44]),
    ...     np.array([2.0]), np.array([22.35]), np.ones(1))
    >>> round(ll, 4)
    -3.5513
    """
    p, q, v = (float(val) for val in params_array)
    # Terms that depend on a customer only through x are summed per distinct x (x is a
    # whole number: index by it); data-only sums are taken once. Only ln(xm+v) and
    # 1/(xm+v) are evaluated per row, which makes a call ~10x cheaper on 1M customers.
    xi = x.astype(np.int64)
    w_by_x = np.bincount(xi, weights=weights)
    xs = np.arange(len(w_by_x), dtype=float)
    present = w_by_x > 0
    xs, w_by_x = xs[present], w_by_x[present]
    pxs = p * xs
    psi_pxq, psi_px = digamma(pxs + q), digamma(pxs)
    log_m, log_x = np.log(m), np.log(x)
    xm_v = x * m + v
    log_xm_v = np.log(xm_v)
    w_x = weights * x
    sum_w, sum_wx_logm, sum_w_logm = float(np.sum(weights)), float(np.sum(w_x * log_m)), float(np.sum(weights * log_m))
    sum_wx_logx, sum_wx_L, sum_w_L = float(np.sum(w_x * log_x)), float(np.sum(w_x * log_xm_v)), float(np.sum(weights * log_xm_v))
    ll = (np.sum(w_by_x * (gammaln(pxs + q) - gammaln(pxs))) - sum_w * gammaln(q) + sum_w * q * np.log(v)
          + p * sum_wx_logm - sum_w_logm + p * sum_wx_logx - p * sum_wx_L - q * sum_w_L)
    d_p = np.sum(w_by_x * xs * (psi_pxq - psi_px)) + sum_wx_logm + sum_wx_logx - sum_wx_L
    d_q = np.sum(w_by_x * psi_pxq) - sum_w * digamma(q) + sum_w * np.log(v) - sum_w_L
    d_v = sum_w * q / v - float(np.sum(weights * (p * x + q) / xm_v))
    return float(ll), np.array([d_p, d_q, d_v], dtype=float)


def _check_spend_inputs(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = check_frequency(frequency, "frequency", minimum=1)
    m = as_numeric_vector(monetary_value, "monetary_value")
    check_same_length(frequency=x, monetary_value=m)
    bad = np.flatnonzero(m <= 0)
    if bad.size:
        i = int(bad[0])
        raise CustscoreError(f"monetary_value: must be > 0; position {i} has {float(m[i])!r}")
    return x, m


class GammaGammaModel:
    """Gamma-Gamma spend model with a scikit-learn style estimator contract.

    Fit it only on customers with at least one repeat purchase (``frequency >= 1``) and a
    positive mean repeat spend; filtering is the caller's job and anything else is an
    error, not silently dropped.

    Parameters
    ----------
    penalizer:
        L2 penalty ``penalizer * (p**2 + q**2 + v_s**2)`` added to the mean negative
        log-likelihood per customer, like lifetimes. ``v_s`` is ``v`` in the internal money
        unit (spends divided by their mean), so the penalty does not depend on the currency
        unit (lifetimes penalises ``v`` in the caller's unit, so penalised fits differ).
    n_starts, seed:
        Optimiser starts and the seed of their jitter.

    Fitted attributes: ``params_`` (dict p, q, v; v in the caller's money unit),
    ``log_likelihood_`` (unpenalised, summed over customers, in the caller's unit),
    ``variance_matrix_`` (DataFrame, inverse Hessian of the unpenalised negative
    log-likelihood, or ``None``), ``n_customers_`` (sum of weights).

    >>> m = GammaGammaModel()
    >>> m.params_ = {"p": 6.25, "q": 3.74, "v": 15.44}
    >>> m.expected_average_spend([0, 2], [0.0, 22.35]).round(3).tolist()
    [35.219, 24.664]
    """

    def __init__(self, *, penalizer: float = 0.0, n_starts: int = 5, seed: int = 0) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.seed = seed

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> "GammaGammaModel":
        """Fit by maximum likelihood on customers with ``frequency >= 1`` and ``monetary_value > 0``.

        ``monetary_value`` is the mean spend of the repeat transactions. Identical
        ``(x, m)`` rows are collapsed with summed weights. Raises :class:`FitError` with
        fewer than ``MIN_CUSTOMERS`` customers, on non-convergence, or when the fitted
        ``q <= 1`` (the population mean spend ``p v / (q - 1)`` would be infinite).
        """
        check_hyperparameters(
            {"penalizer": self.penalizer, "n_starts": self.n_starts, "seed": self.seed}, ESTIMATOR_CONSTRAINTS
        )
        x, m = _check_spend_inputs(frequency, monetary_value)
        w = check_weights(weights, len(x))
        if w.sum() < MIN_CUSTOMERS:
            raise FitError(
                f"cannot fit Gamma-Gamma: need at least {MIN_CUSTOMERS} customers with a repeat purchase, "
                f"got {total_weight(w)}"
            )
        (ux, um), uw = unique_rows([x, m], w)
        scale = float(np.average(um, weights=uw))  # internal money unit: mean spend = 1
        sm = um / scale
        params = fit_log_params(lambda th: gamma_gamma_log_likelihood(th, ux, sm, uw), PARAM_NAMES,
                                float(uw.sum()), float(self.penalizer), self.n_starts, self.seed, "Gamma-Gamma")
        params[2] *= scale  # v back to the caller's money unit
        if params[1] <= 1.0:
            raise FitError(
                f"Gamma-Gamma fit gave q = {params[1]:.3g} <= 1, so the mean spend is infinite; "
                "check for extreme spends or try --penalizer 0.001"
            )
        self.params_ = {name: float(val) for name, val in zip(PARAM_NAMES, params)}
        self.log_likelihood_ = gamma_gamma_log_likelihood(params, ux, um, uw)[0]
        hessian = numerical_hessian(lambda th: -gamma_gamma_log_likelihood(th, ux, um, uw)[1], params)
        inv = inverse_or_none(hessian)
        self.variance_matrix_ = (
            None if inv is None else pd.DataFrame(inv, index=list(PARAM_NAMES), columns=list(PARAM_NAMES))
        )
        self.n_customers_ = total_weight(w)
        return self

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Conditional expected spend per transaction given ``x`` repeat purchases of mean ``m``.

        Fader and Hardie, note 025, eq. 5 (FHL 2005 JMR, spend model)::

            E[M | p, q, v, m, x] = p (v + x m) / (p x + q - 1)

        a weighted average of the population mean ``p v / (q - 1)`` and ``m``. For
        ``frequency == 0`` it is the population mean and ``monetary_value`` is ignored (it
        may be 0 or NaN there); for ``frequency >= 1`` it must be finite and > 0.
        Shape ``(n_customers,)``.
        """
        if not hasattr(self, "params_"):
            raise FitError("GammaGammaModel is not fitted yet: call fit first")
        p, q, v = self.params_["p"], self.params_["q"], self.params_["v"]
        x = check_frequency(frequency, "frequency", minimum=0)
        m_raw = np.atleast_1d(np.asarray(monetary_value))
        if m_raw.ndim != 1 or m_raw.dtype.kind not in "iuf":
            raise CustscoreError(f"monetary_value: must be a one-dimensional numeric array, got dtype {m_raw.dtype}")
        check_same_length(frequency=x, monetary_value=m_raw)
        repeat = x > 0
        m = m_raw.astype(float)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(repeat & ~(np.isfinite(m) & (m > 0)))
        if bad.size:
            i = int(bad[0])
            raise CustscoreError(f"monetary_value: must be finite and > 0 when frequency >= 1; position {i} has {float(m[i])!r}")
        m = np.where(repeat, m, 0.0)
        return p * (v + x * m) / (p * x + q - 1.0)
