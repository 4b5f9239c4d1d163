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

from typing import Any, Optional

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln, polygamma

from custscore.errors import CustscoreError, FitError
from custscore.threads import for_each_block
from custscore.training.diagnostics import fit_diagnostics, fmt, generic_warnings
from custscore.training.fitting import (
    ESTIMATOR_CONSTRAINTS,
    as_numeric_vector,
    check_frequency,
    check_hyperparameters,
    check_same_length,
    check_weights,
    FitSettings,
    LOG_PARAM_BOUND,
    fit_log_params,
    inverse_or_none,
    systematic_sample,
    total_weight,
)

PARAM_NAMES = ("p", "q", "v")
#: The process each parameter describes, for fit warnings.
PROCESSES = {"p": "spend per purchase", "q": "spend heterogeneity between customers",
             "v": "spend heterogeneity between customers"}
_CONSEQUENCE = "expected_avg_spend and CLV are uncertain"
#: Advice of a fit that does not converge: the option that penalises Gamma-Gamma alone.
FIT_ADVICE = "try --gg-penalizer 0.001 or more data"
#: 5 % critical value of the likelihood-ratio test of heterogeneity (q = inf lies on the
#: boundary, so the statistic is a 50:50 mixture of chi2(0) and chi2(1); Self and Liang
#: 1987): below it the data cannot tell customers' mean spends apart.
HETEROGENEITY_LR_CRITICAL = 2.706

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
    return GammaGammaLikelihood(x, m, weights).value_and_gradient(params_array)


class GammaGammaLikelihood:
    """The Gamma-Gamma log-likelihood of fixed rows ``(x, m, weight)``: value, gradient, Hessian.

    Terms that depend on a row only through x are summed per distinct x; data-only sums
    (of ln m, ln x) are taken once here. Per row and evaluation only ``ln(xm+v)`` and
    ``1/(xm+v)`` remain (and ``1/(xm+v)**2`` for the Hessian). Second derivatives::

        d2/dp2 = x^2 [psi1(px+q) - psi1(px)]      d2/dpdq = x psi1(px+q)
        d2/dq2 = psi1(px+q) - psi1(q)             d2/dpdv = -x/(xm+v)
        d2/dqdv = 1/v - 1/(xm+v)                  d2/dv2 = -q/v^2 + (px+q)/(xm+v)^2
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> None:
        x, m, w = (np.asarray(v, dtype=float) for v in (x, m, weights))
        self._rows = (x, m, w)
        self.n_rows = len(x)
        self.total_weight = float(np.sum(w))
        w_by_x = np.bincount(x.astype(np.int64), weights=w)
        present = w_by_x > 0
        self._xs, self._w_by_x = np.arange(len(w_by_x), dtype=float)[present], w_by_x[present]
        self._xm, self._w, self._wx = x * m, w, w * x
        log_m = np.log(m)
        self._sum_wx_logm = float(np.dot(self._wx, log_m))
        self._sum_w_logm = float(np.dot(w, log_m))
        self._sum_wx_logx = float(np.dot(self._wx, np.log(x)))

    def subsample(self, max_rows: int) -> "GammaGammaLikelihood":
        """Every k-th row, each keeping its weight."""
        return GammaGammaLikelihood(*systematic_sample(self._rows, max_rows))

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """``(sum_i w_i LL_i, gradient)`` in natural parameters ``(p, q, v)``."""
        p, q, v = (float(val) for val in params)
        xs, w_by_x, W = self._xs, self._w_by_x, self.total_weight
        pxs = p * xs
        psi_pxq, psi_px = digamma(pxs + q), digamma(pxs)
        xm_v = self._xm + v
        log_xm_v = np.log(xm_v)
        sum_wx_L, sum_w_L = float(np.dot(self._wx, log_xm_v)), float(np.dot(self._w, log_xm_v))
        ll = (float(np.dot(w_by_x, gammaln(pxs + q) - gammaln(pxs))) - W * gammaln(q) + W * q * np.log(v)
              + p * self._sum_wx_logm - self._sum_w_logm + p * self._sum_wx_logx - p * sum_wx_L - q * sum_w_L)
        d_p = float(np.dot(w_by_x, xs * (psi_pxq - psi_px))) + self._sum_wx_logm + self._sum_wx_logx - sum_wx_L
        d_q = float(np.dot(w_by_x, psi_pxq)) - W * digamma(q) + W * np.log(v) - sum_w_L
        inv = 1.0 / xm_v
        d_v = W * q / v - p * float(np.dot(self._wx, inv)) - q * float(np.dot(self._w, inv))
        return float(ll), np.array([d_p, d_q, d_v])

    def hessian(self, params: np.ndarray) -> np.ndarray:
        """Second derivatives of ``sum_i w_i LL_i`` in ``(p, q, v)``, shape (3, 3)."""
        p, q, v = (float(val) for val in params)
        xs, w_by_x, W = self._xs, self._w_by_x, self.total_weight
        tri_pxq, tri_px = polygamma(1, p * xs + q), polygamma(1, p * xs)
        inv = 1.0 / (self._xm + v)
        inv2 = inv * inv
        sum_wx_inv, sum_w_inv = float(np.dot(self._wx, inv)), float(np.dot(self._w, inv))
        h = np.empty((3, 3))
        h[0, 0] = float(np.dot(w_by_x, xs**2 * (tri_pxq - tri_px)))
        h[0, 1] = h[1, 0] = float(np.dot(w_by_x, xs * tri_pxq))
        h[1, 1] = float(np.dot(w_by_x, tri_pxq)) - W * polygamma(1, q)
        h[0, 2] = h[2, 0] = -sum_wx_inv
        h[1, 2] = h[2, 1] = W / v - sum_w_inv
        h[2, 2] = -W * q / v**2 + p * float(np.dot(self._wx, inv2)) + q * float(np.dot(self._w, inv2))
        return h


def homogeneous_spend_fit(x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Gamma-Gamma's no-heterogeneity limit (``q -> inf``, ``v/q = 1/nu``): ``(log-likelihood, p, nu)``.

    Every customer's transactions are ``Gamma(shape p, rate nu)`` with one ``nu``, so the
    mean ``m`` of ``x`` of them is ``Gamma(p x, rate x nu)``. For a given ``p`` the MLE is
    ``nu = p sum(w x) / sum(w x m)``; ``p`` maximises the profile likelihood (log ``p``
    within the optimiser's box). Same data and density family as
    :func:`gamma_gamma_log_likelihood`, so the two log-likelihoods compare.
    """
    x, m, w = (np.asarray(v, dtype=float) for v in (x, m, weights))
    log_m, log_x = np.log(m), np.log(x)
    sum_wx, sum_wxm = float(np.dot(w, x)), float(np.dot(w * x, m))

    def log_likelihood(p: float) -> float:
        nu = p * sum_wx / sum_wxm
        px = p * x
        return float(np.dot(w, px * (log_x + np.log(nu)) - gammaln(px) + (px - 1.0) * log_m)) - nu * sum_wxm

    res = minimize_scalar(lambda z: -log_likelihood(float(np.exp(z))), bounds=(-LOG_PARAM_BOUND, LOG_PARAM_BOUND),
                          method="bounded", options={"xatol": 1e-10})
    p = float(np.exp(res.x))
    return log_likelihood(p), p, p * sum_wx / sum_wxm


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
    log-likelihood, or ``None``), ``n_customers_`` (sum of weights), ``diagnostics_``
    (plain data: parameters on the optimiser's box, condition number of the information,
    standard errors, ``heterogeneity_lr``: likelihood ratio against one common spend
    distribution), ``warnings_`` (texts, one per problem) and ``unusable_`` (None, or why
    this fit's expected spend must not be used: ``q <= 1`` or no heterogeneity found; the
    training pipeline then uses the observed mean spend, see :mod:`custscore.training.spend`).

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

        ``monetary_value`` is the mean spend of the repeat transactions; ``weights`` are the
        number of customers each row stands for. Raises :class:`FitError` with
        fewer than ``MIN_CUSTOMERS`` customers or on non-convergence. A fitted ``q <= 1``
        (population mean spend ``p v / (q - 1)`` infinite) or a likelihood ratio of
        heterogeneity below ``HETEROGENEITY_LR_CRITICAL`` is not an error: it sets
        ``unusable_`` and a warning.
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
        if np.ptp(m) <= 1e-12 * float(np.max(m)):
            raise FitError(f"cannot fit Gamma-Gamma: every mean repeat spend is {fmt(float(m[0]))} (no spread to fit); "
                           "use the observed mean spend (custscore.training.spend)")
        # Identical rows are not merged: mean spends rarely repeat, and the terms that
        # depend on x alone are summed per distinct x anyway.
        likelihood = GammaGammaLikelihood(x, m, w)
        # Internal money unit: the mean spend becomes 1 (start at all-ones, unit-free penalty).
        scales = np.array([1.0, 1.0, float(np.average(m, weights=w))])
        settings = FitSettings(penalizer=float(self.penalizer), n_starts=self.n_starts, seed=self.seed,
                               advice=FIT_ADVICE)
        try:
            params = fit_log_params(likelihood, PARAM_NAMES, scales, settings, "Gamma-Gamma")
        except FitError as exc:
            # A search that ends with q on the box ran along the q -> inf ridge towards one
            # common spend distribution: the boundary solution, tested below, not a failure.
            z = getattr(exc, "closest_log_params", None)
            if z is None or z[1] < LOG_PARAM_BOUND * (1 - 1e-9):
                raise
            params = scales * np.exp(z)
        self.params_ = {name: float(val) for name, val in zip(PARAM_NAMES, params)}
        self.log_likelihood_ = likelihood.value_and_gradient(params)[0]
        hessian = likelihood.hessian(params)
        inv = inverse_or_none(-hessian)
        self.variance_matrix_ = (
            None if inv is None else pd.DataFrame(inv, index=list(PARAM_NAMES), columns=list(PARAM_NAMES))
        )
        self.n_customers_ = total_weight(w)
        self.diagnostics_ = fit_diagnostics(PARAM_NAMES, params, scales, hessian, likelihood.total_weight, inv)
        homogeneous_ll = homogeneous_spend_fit(x, m, w)[0]
        self.diagnostics_["heterogeneity_lr"] = max(0.0, 2.0 * (self.log_likelihood_ - homogeneous_ll))
        self.unusable_, fallback = self._unusable()
        self.diagnostics_["fallback"] = fallback
        skip = PARAM_NAMES if self.unusable_ else ()
        self.warnings_ = tuple(([f"{self.unusable_}; this fit's expected spend is not used"] if self.unusable_ else [])
                               + generic_warnings("Gamma-Gamma", self.diagnostics_, self.params_, PROCESSES,
                                                  _CONSEQUENCE, skip=skip))
        return self

    def _unusable(self) -> tuple[Optional[str], Optional[str]]:
        """Why this fit's expected spend is not usable (or None) and the limit that replaces it.

        The limit is ``population_mean`` (no heterogeneity: ``q -> inf``, where eq. 5 tends
        to the population mean) or ``own_mean`` (``p -> inf``: no spread between a
        customer's purchases, eq. 5 tends to the customer's own mean ``m``; or ``q <= 1``).
        """
        p, q, v = (self.params_[name] for name in PARAM_NAMES)
        lr = self.diagnostics_["heterogeneity_lr"]
        if lr < HETEROGENEITY_LR_CRITICAL:
            return (f"Gamma-Gamma: spend heterogeneity between customers not identified (q={fmt(q)}, v={fmt(v)}; "
                    f"likelihood ratio {lr:.2f} < {HETEROGENEITY_LR_CRITICAL} against one common spend "
                    "distribution): customers' mean spends differ no more than chance"), "population_mean"
        if "p" in self.diagnostics_["at_bound"] and np.log(p) > 0:
            return (f"Gamma-Gamma: spend per purchase not identified (p={fmt(p)} at the optimiser's bound: "
                    "no spread between a customer's purchases)"), "own_mean"
        if q <= 1.0:
            return (f"Gamma-Gamma: q={fmt(q)} <= 1, so the population mean spend p v / (q - 1) is undefined "
                    "(spend too heavy-tailed between customers)"), "own_mean"
        return None, None

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
        m = m_raw.astype(float, copy=False)
        out = np.empty(len(x))

        def block(rows: slice) -> Optional[int]:
            """The block's spends into ``out``, or the position of its first bad ``m``."""
            xb, mb = x[rows], m[rows]
            repeat = xb > 0
            with np.errstate(invalid="ignore"):
                ok = ((mb > 0) & (mb < np.inf)) | ~repeat  # NaN compares False
            if not ok.all():
                return rows.start + int(np.argmin(ok))
            out[rows] = p * (v + np.where(repeat, xb * mb, 0.0)) / (p * xb + q - 1.0)
            return None

        bad = [i for i in for_each_block(block, len(x)) if i is not None]
        if bad:
            i = min(bad)
            raise CustscoreError(f"monetary_value: must be finite and > 0 when frequency >= 1; position {i} has {float(m[i])!r}")
        return out
