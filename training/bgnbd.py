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

from typing import Any, Optional, Sequence

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1, polygamma

from custscore.training.diagnostics import NBD_LIMIT_MEAN_DROPOUT, fmt, generic_warnings
from custscore.training.fitting import check_rfm, sorted_codes, systematic_sample
from custscore.training.purchase_models import MaximumLikelihoodPurchaseModel, check_horizon, log_nbd_pmf

PARAM_NAMES = ("r", "alpha", "a", "b")
#: The process each parameter describes, for fit warnings.
PROCESSES = {"r": "purchase rate", "alpha": "purchase rate", "a": "dropout", "b": "dropout"}
#: What a generic identification problem means for the scores.
_CONSEQUENCE = "P(alive), expected purchases and CLV are uncertain; compare them with days since last purchase"
#: Advice of a fit that does not converge: the option that penalises BG/NBD alone.
FIT_ADVICE = "try --bgnbd-penalizer 0.001 or more data"
#: Rows per block in per-customer loops: the temporaries of one block stay in the CPU cache.
_BLOCK_ROWS = 1 << 15


def bgnbd_log_likelihood_rows(theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-row BG/NBD log-likelihood, FHL 2005 eq. 6 in log form (A1..A4 as in :func:`bgnbd_log_likelihood`).

    ``theta = (r, alpha, a, b)``, each a scalar or a per-row array (covariates). Shape of ``x``.
    """
    r, alpha, a, b = theta
    has_repeat = x > 0
    bx1 = np.where(has_repeat, b + x - 1.0, 1.0)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = (gammaln(a + b) - gammaln(a + b + x)) + (gammaln(b + x) - gammaln(b))  # exactly 0 at x = 0
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(has_repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def bgnbd_gradient_rows(theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[np.ndarray]:
    """Per-row analytic gradient of :func:`bgnbd_log_likelihood_rows` in ``(r, alpha, a, b)``, 4 arrays of shape (n,).

    With ``w4 = [x > 0] sigmoid(A4 - A3)``: ``dLL = dA1 + dA2 + (1 - w4) dA3 + w4 dA4``.
    """
    r, alpha, a, b = theta
    has_repeat = x > 0
    bx1 = np.where(has_repeat, b + x - 1.0, 1.0)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(has_repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    w4 = np.exp(a4 - np.logaddexp(a3, a4))  # 0 where x = 0
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - (1 - w4) * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * ((1 - w4) / (alpha + T) + w4 / (alpha + t_x))
    d_a = psi_ab - psi_abx + w4 / a
    d_b = psi_ab + digamma(b + x) - digamma(b) - psi_abx - w4 / bx1
    return [np.broadcast_to(d, np.shape(x)) for d in (d_r, d_alpha, d_a, d_b)]


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

    Returns ``(sum_i w_i LL_i, d/dtheta of that sum)``; see :class:`BetaGeoLikelihood`.

    >>> ll, grad = bgnbd_log_likelihood(np.array([0.243, 4.414, 0.793, 2.426]),
    ...     np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86]), np.ones(2))
    >>> round(ll, 4)
    -10.0133
    """
    return BetaGeoLikelihood(x, t_x, T, weights).value_and_gradient(params_array)


class BetaGeoLikelihood:
    """The BG/NBD log-likelihood of fixed rows ``(x, t_x, T, weight)``: value, gradient, Hessian.

    Write ``LL = A1 + A2 + A3 + [x > 0] softplus(D)`` with ``D = A4 - A3 =
    ln(a) - ln(b+x-1) + (r+x) (ln(alpha+T) - ln(alpha+t_x))`` (FHL 2005 eq. 6; A1..A4 as in
    :func:`bgnbd_log_likelihood`). A1 and A2 depend on a row only through x, A3 through
    (x, T): both are summed per distinct x or T from weights aggregated once here. Per
    row (x > 0 only) there remain D, one ``exp`` and one ``log1p``, and a few products,
    evaluated in cache-sized blocks. With ``w4 = sigmoid(D)`` and ``u = w4 (1 - w4)``:

    - gradient of softplus(D) = ``w4 grad D``, ``grad D = (ln(alpha+T) - ln(alpha+t_x),
      (r+x) (1/(alpha+T) - 1/(alpha+t_x)), 1/a, -1/(b+x-1))``;
    - Hessian of softplus(D) = ``u grad D grad D' + w4 Hess D``.

    ``dropout_at_zero=True`` gives MBG/NBD's likelihood (Batislam, Denizel and Filiztekin
    2007; :mod:`custscore.training.mbgnbd`): a dropout chance at time zero too, so the
    dropout terms count ``x + 1`` purchases (``lnG(b+x+1) - lnG(a+b+x+1)`` in A2 and
    ``ln(a) - ln(b+x)`` in D) and every row, ``x = 0`` included, has the softplus(D) term.

    Time unit: any, the same for ``t_x`` and ``T``; ``alpha`` is in that unit. The last
    evaluation is remembered, so the gradient and Hessian at one point cost one pass.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray,
                 dropout_at_zero: bool = False) -> None:
        x, t_x, T, w = (np.asarray(v, dtype=float) for v in (x, t_x, T, weights))
        self._rows = (x, t_x, T, w)
        self._dropout_at_zero = bool(dropout_at_zero)
        #: MBG/NBD's extra dropout chance (at time zero) per customer
        self._shift = 1.0 if dropout_at_zero else 0.0
        self.n_rows = len(x)
        self.total_weight = float(np.sum(w))
        self._w_by_x = np.bincount(x.astype(np.int64), weights=w)
        self._xs = np.arange(len(self._w_by_x), dtype=float)
        T_codes, self._T_values = sorted_codes(T)
        self._w_by_T = np.bincount(T_codes, weights=w, minlength=len(self._T_values))
        self._wx_by_T = np.bincount(T_codes, weights=w * x, minlength=len(self._T_values))
        repeat = x + self._shift > 0  # the rows with a softplus(D) term
        self._t_codes, self._t_values = sorted_codes(t_x[repeat])
        self._T_codes = T_codes[repeat]
        self._x, self._w = x[repeat], w[repeat]
        self._x_codes, self._group_x = sorted_codes(self._x)
        self._memo: tuple[bytes, int, dict[str, Any]] | None = None

    def subsample(self, max_rows: int) -> "BetaGeoLikelihood":
        """Every k-th row in the given order, each keeping its weight."""
        return BetaGeoLikelihood(*systematic_sample(self._rows, max_rows), dropout_at_zero=self._dropout_at_zero)

    def _row_sums(self, params: np.ndarray, order: int) -> dict[str, Any]:
        """Weighted sums over the x > 0 rows of the softplus(D) terms (order 1: value and
        gradient; order 2: also the Hessian), by block; per-x sums as arrays."""
        key = np.asarray(params, dtype=float).tobytes()
        if self._memo is not None and self._memo[0] == key and self._memo[1] >= order:
            return self._memo[2]
        r, alpha, a, b = (float(v) for v in params)
        log_T, log_t = np.log(alpha + self._T_values), np.log(alpha + self._t_values)
        inv_T, inv_t = 1.0 / (alpha + self._T_values), 1.0 / (alpha + self._t_values)
        c_by_x = np.log(a) - np.log(b + self._group_x + self._shift - 1.0)
        n_x = len(self._group_x)
        names1 = ("softplus", "diff", "alpha", "ww4")
        names2 = ("diff_diff", "diff_alpha", "ww4_inv_diff", "u_diff", "alpha_alpha", "ww4_rx_inv2", "u_alpha", "u")
        total = dict.fromkeys(names1 + (names2 if order > 1 else ()), 0.0)
        by_x = {k: np.zeros(n_x) for k in (("ww4", "u_diff", "u_alpha", "u") if order > 1 else ("ww4",))}
        for start in range(0, len(self._x), _BLOCK_ROWS):
            rows = slice(start, start + _BLOCK_ROWS)
            Tc, tc, xc, w = self._T_codes[rows], self._t_codes[rows], self._x_codes[rows], self._w[rows]
            diff = log_T[Tc] - log_t[tc]  # >= 0
            inv_diff = inv_T[Tc] - inv_t[tc]  # <= 0
            rx = r + self._x[rows]
            g_alpha = rx * inv_diff  # dD/dalpha
            d = c_by_x[xc] + rx * diff
            e = np.exp(-np.abs(d))
            s = 1.0 / (1.0 + e)
            w4 = np.where(d >= 0, s, e * s)  # sigmoid(D)
            ww4 = w * w4
            total["softplus"] += float(np.dot(w, np.maximum(d, 0.0) + np.log1p(e)))
            total["diff"] += float(np.dot(ww4, diff))
            total["alpha"] += float(np.dot(ww4, g_alpha))
            total["ww4"] += float(np.sum(ww4))
            by_x["ww4"] += np.bincount(xc, weights=ww4, minlength=n_x)
            if order > 1:
                u = ww4 * (1.0 - w4)
                u_diff, u_alpha = u * diff, u * g_alpha
                total["diff_diff"] += float(np.dot(u_diff, diff))
                total["diff_alpha"] += float(np.dot(u_diff, g_alpha))
                total["ww4_inv_diff"] += float(np.dot(ww4, inv_diff))
                total["u_diff"] += float(np.sum(u_diff))
                total["alpha_alpha"] += float(np.dot(u_alpha, g_alpha))
                total["ww4_rx_inv2"] += float(np.dot(ww4 * rx, inv_t[tc] ** 2 - inv_T[Tc] ** 2))
                total["u_alpha"] += float(np.sum(u_alpha))
                total["u"] += float(np.sum(u))
                by_x["u_diff"] += np.bincount(xc, weights=u_diff, minlength=n_x)
                by_x["u_alpha"] += np.bincount(xc, weights=u_alpha, minlength=n_x)
                by_x["u"] += np.bincount(xc, weights=u, minlength=n_x)
        result = {**total, "by_x": by_x, "log_T": log_T, "inv_T": inv_T}
        self._memo = (key, order, result)
        return result

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """``(sum_i w_i LL_i, gradient)`` in natural parameters ``(r, alpha, a, b)``."""
        q = self._row_sums(params, 1)
        r, alpha, a, b = (float(v) for v in params)
        xs, w_by_x, W = self._xs, self._w_by_x, self.total_weight
        xd = xs + self._shift  # purchases that were dropout chances, per distinct x
        a3_weight = r * self._w_by_T + self._wx_by_T  # sum of w (r + x) per distinct T
        ll = (float(np.dot(w_by_x, gammaln(r + xs) + gammaln(b + xd) - gammaln(a + b + xd)))
              + W * (r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b))
              - float(np.dot(a3_weight, q["log_T"])) + q["softplus"])
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + xd)
        d_r = (float(np.dot(w_by_x, digamma(r + xs))) + W * (np.log(alpha) - digamma(r))
               - float(np.dot(self._w_by_T, q["log_T"])) + q["diff"])
        d_alpha = W * r / alpha - float(np.dot(a3_weight, q["inv_T"])) + q["alpha"]
        d_a = W * psi_ab - float(np.dot(w_by_x, psi_abx)) + q["ww4"] / a
        d_b = (W * (psi_ab - digamma(b)) + float(np.dot(w_by_x, digamma(b + xd) - psi_abx))
               - float(np.dot(q["by_x"]["ww4"], 1.0 / (b + self._group_x + self._shift - 1.0))))
        return float(ll), np.array([d_r, d_alpha, d_a, d_b])

    def hessian(self, params: np.ndarray) -> np.ndarray:
        """Second derivatives of ``sum_i w_i LL_i`` in ``(r, alpha, a, b)``, shape (4, 4)."""
        q = self._row_sums(params, 2)
        r, alpha, a, b = (float(v) for v in params)
        xs, w_by_x, W, by_x = self._xs, self._w_by_x, self.total_weight, q["by_x"]
        xd = xs + self._shift
        inv_b = 1.0 / (b + self._group_x + self._shift - 1.0)
        tri_ab, tri_abx = polygamma(1, a + b), polygamma(1, a + b + xd)
        h = np.zeros((4, 4))
        h[0, 0] = float(np.dot(w_by_x, polygamma(1, r + xs))) - W * polygamma(1, r) + q["diff_diff"]
        h[0, 1] = W / alpha - float(np.dot(self._w_by_T, q["inv_T"])) + q["diff_alpha"] + q["ww4_inv_diff"]
        h[0, 2] = q["u_diff"] / a
        h[0, 3] = -float(np.dot(by_x["u_diff"], inv_b))
        h[1, 1] = (-W * r / alpha**2 + float(np.dot(r * self._w_by_T + self._wx_by_T, q["inv_T"] ** 2))
                   + q["alpha_alpha"] + q["ww4_rx_inv2"])
        h[1, 2] = q["u_alpha"] / a
        h[1, 3] = -float(np.dot(by_x["u_alpha"], inv_b))
        h[2, 2] = W * tri_ab - float(np.dot(w_by_x, tri_abx)) + (q["u"] - q["ww4"]) / a**2
        h[2, 3] = W * tri_ab - float(np.dot(w_by_x, tri_abx)) - float(np.dot(by_x["u"], inv_b)) / a
        h[3, 3] = (W * (tri_ab - polygamma(1, b)) + float(np.dot(w_by_x, polygamma(1, b + xd) - tri_abx))
                   + float(np.dot(by_x["u"] + by_x["ww4"], inv_b**2)))
        return np.triu(h) + np.triu(h, 1).T


#: Terms of :func:`_hyp2f1_series` before it gives up (NaN).
_SERIES_TERMS = 200


def _hyp2f1_series(A: np.ndarray, B: np.ndarray, C: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gauss' series ``sum_n (A)_n (B)_n / ((C)_n n!) z**n`` term by term, shape of ``z``.

    For the rows where scipy's ``hyp2f1`` fails; NaN where the series has not converged
    (relative term below 1e-16) after :data:`_SERIES_TERMS` terms.
    """
    total = np.ones_like(z, dtype=float)
    term = np.ones_like(z, dtype=float)
    for n in range(_SERIES_TERMS):
        term = term * (A + n) * (B + n) / ((C + n) * (n + 1.0)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-16 * np.abs(total)):
            return total
    return np.where(np.abs(term) <= 1e-16 * np.abs(total), total, np.nan)


class BetaGeoModel(MaximumLikelihoodPurchaseModel):
    """BG/NBD model (FHL 2005) with a scikit-learn style estimator contract (a :class:`PurchaseModel`).

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
    definite), ``n_customers_`` (sum of weights), ``diagnostics_`` (dict of plain data:
    parameters on the optimiser's box, condition number of the information, standard
    errors, mean dropout ``a/(a+b)``, lowest P(alive) of a repeat customer) and
    ``warnings_`` (tuple of texts, one per problem: see :meth:`_warnings`).

    >>> import numpy as np
    >>> m = BetaGeoModel()
    >>> m.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> m.p_alive([2, 0], [30.43, 0.0], [38.86, 38.86]).round(4).tolist()
    [0.7266, 1.0]
    """

    PARAM_NAMES = PARAM_NAMES
    KEY = "bgnbd"
    MODEL_NAME = "BG/NBD"
    PARAM_PREFIX = ""  # the reference model: logged as r, alpha, a, b
    FIT_ADVICE = FIT_ADVICE
    TIME_PARAMS = ("alpha",)
    #: Fader and Hardie (2007, note 019): ``alpha_i = alpha0 exp(-gamma_alpha' z_i)`` (a positive
    #: coefficient raises the purchase rate), ``a_i = a0 exp(gamma_a' z_i)``, ``b_i = b0 exp(gamma_b' z_i)``
    #: (separate dropout coefficients; CLVTools constrains gamma_a = gamma_b).
    COVARIATE_LINKS = (("alpha", -1.0), ("a", 1.0), ("b", 1.0))
    PROCESSES = PROCESSES

    def _likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> "BetaGeoLikelihood":
        return BetaGeoLikelihood(x, t_x, T, w)

    def _row_log_likelihood(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        return bgnbd_log_likelihood_rows(theta, x, t_x, T)

    def _row_gradient(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[np.ndarray]:
        return bgnbd_gradient_rows(theta, x, t_x, T)

    def _extra_diagnostics(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                           covariates: Optional[np.ndarray] = None) -> dict[str, Any]:
        """Mean dropout ``a/(a+b)`` (at z = 0) and the lowest P(alive) of a repeat customer."""
        a, b = self.params_["a"], self.params_["b"]
        repeat = x > 0
        z = None if covariates is None else covariates[repeat]
        return {"mean_dropout": a / (a + b),
                "min_p_alive_repeat": float(np.min(self.p_alive(x[repeat], t_x[repeat], T[repeat], covariates=z)))}

    def _warnings(self) -> list[str]:
        """One text per identification problem of the fit (plain, no ``warning:`` prefix).

        The negative-binomial limit (FHL 2005, section 3): ``a/(a+b) <`` NBD_LIMIT_MEAN_DROPOUT,
        the dropout process is not identified and P(alive) is ~1 for everyone; it explains
        ``a``/``b`` on the box and a singular information matrix, so it is the only text then.
        Otherwise: parameters on the box, or a near-singular information matrix.
        """
        d, p = self.diagnostics_, self.params_
        if d["mean_dropout"] < NBD_LIMIT_MEAN_DROPOUT:
            nbd = [(f"BG/NBD: dropout not identified (a={fmt(p['a'])}, b={fmt(p['b'])}, the negative-binomial "
                    f"limit, mean dropout per purchase {fmt(d['mean_dropout'])}): P(alive) is ~1 for everyone "
                    f"(1 - P(alive) <= {fmt(1 - d['min_p_alive_repeat'])}) and does not rank churn; rely on churn_probability "
                    "/ days since last purchase")]
            return nbd + generic_warnings("BG/NBD", d, p, self._processes(), _CONSEQUENCE, skip=("a", "b"))
        return generic_warnings("BG/NBD", d, p, self._processes(), _CONSEQUENCE)

    # ------------------------------------------------------------------ predictions

    def log_likelihood_per_customer(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Log-likelihood of each customer's ``(x, t_x, T)``, FHL 2005 eq. 6 in log form.

        Uses log-sum-exp and ``scipy.special.gammaln`` (:func:`bgnbd_log_likelihood_rows`).
        Shape ``(n_customers,)``.
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        return bgnbd_log_likelihood_rows(self._params(covariates, len(x)), x, t_x, t_cal)

    def p_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Probability that each customer is still alive at ``T``.

        FHL 2005 eq. 13 (also Fader, Hardie and Lee, "Computing P(alive) using the BG/NBD
        model", note 021): ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))**(r+x))``,
        1 for customers with no repeat purchase. Shape ``(n_customers,)``, values in [0, 1].
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        params = self._params(covariates, len(x))
        alpha = params[1]
        return self._p_alive_from_logs(x, sorted_codes(x), np.log(alpha + t_cal) - np.log(alpha + t_x), params)

    def _p_alive_from_logs(self, x: np.ndarray, x_coded: tuple[np.ndarray, np.ndarray],
                           log_ratio: np.ndarray, params: Optional[tuple[Any, ...]] = None) -> np.ndarray:
        """P(alive) from ``x`` (with its :func:`sorted_codes`) and ``ln((alpha+T)/(alpha+t_x))``.

        ``1 / (1 + exp(z))`` with ``z = ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x))``; 1 where x = 0.
        ``params``: per-customer parameters (covariates), else the fitted ones.
        """
        r, _, a, b = self._params() if params is None else params
        if np.ndim(a) or np.ndim(b):  # per-customer a, b: ln(b+x-1) per row
            with np.errstate(divide="ignore", invalid="ignore"):
                c_by_row = np.where(x > 0, np.log(a) - np.log(b + x - 1.0), -np.inf)
            log_odds_dead = c_by_row + (r + x) * log_ratio
            with np.errstate(over="ignore"):
                return 1.0 / (1.0 + np.exp(log_odds_dead))
        x_codes, xs = x_coded  # ln(b+x-1) once per distinct x
        with np.errstate(divide="ignore", invalid="ignore"):
            # ln(a/(b+x-1)), and -inf for x = 0, where the odds of being dead are 0.
            c_by_x = np.where(xs > 0, np.log(a) - np.log(b + xs - 1.0), -np.inf)
        log_odds_dead = c_by_x[x_codes] + (r + x) * log_ratio
        with np.errstate(over="ignore"):  # exp(z) = inf gives P(alive) = 0, as it should
            return 1.0 / (1.0 + np.exp(log_odds_dead))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """The bracket of FHL 2005 eq. 10, so that expected purchases in ``(T, T + t]`` are::

            E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1)
                * [1 - ((alpha+T)/(alpha+T+t))**(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
                / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))**(r+x))

        i.e. P(alive) times this (:func:`conditional_bracket`, via Euler's transformation,
        which stays bounded for large x or t). ``t`` in the unit of ``T``.
        """
        return conditional_bracket(t, x, T, *params)

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Probability of no repeat purchase in ``(T, T + t]`` (``t`` in the model's unit).

        See :func:`p_no_purchase_given_alive` (FHL 2005, section 3).
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        r, alpha = self._params(covariates, len(x))[:2]
        return p_no_purchase_given_alive(r, alpha, check_horizon(t), x, t_cal,
                                         self.p_alive(x, t_x, t_cal, covariates=covariates))

    def _pmf_if_alive(self, t: float, k_max: int, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """P(k purchases in ``(T, T + t]`` | alive at T): :func:`pmf_if_alive` with ``p ~ Beta(a, b + x)``."""
        r, alpha, a, b = params
        return pmf_if_alive(r, alpha, a, b + x, t, k_max, x, T)

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


def conditional_bracket(t: np.ndarray, x: np.ndarray, t_cal: np.ndarray, r: float, alpha: float, a: float,
                        b: float) -> np.ndarray:
    """``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))**(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``.

    The bracket of FHL 2005 eq. 10 (it depends on ``(x, T)`` only), via Euler's
    transformation ``(1-z)**(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` with a series fallback
    where scipy's ``hyp2f1`` fails. MBG/NBD's bracket is this one at ``b + 1``
    (:mod:`custscore.training.mbgnbd`).
    """
    z = t / (alpha + t_cal + t)
    c = a + b + x - 1.0
    hyp_term = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    failed = ~np.isfinite(hyp_term)
    if np.any(failed):
        # scipy's hyp2f1 returns NaN for first parameters of millions (the Poisson limit
        # r, alpha -> inf of a fit on days of history); the direct form's series
        # converges there in a few terms because r b z / c is small.
        z_f, x_f = np.broadcast_to(z, failed.shape)[failed], np.broadcast_to(x, failed.shape)[failed]
        r_f, b_f = (np.broadcast_to(v, failed.shape)[failed] for v in (r, b))  # per-customer with covariates
        series = _hyp2f1_series(r_f + x_f, b_f + x_f, np.broadcast_to(c, failed.shape)[failed], z_f)
        hyp_term = np.array(hyp_term, dtype=float, copy=True)
        hyp_term[failed] = np.exp((r_f + x_f) * np.log1p(-z_f)) * series
    return c / (a - 1.0) * (1.0 - hyp_term)


def p_no_purchase_given_alive(r: float, alpha: float, t: Any, frequency: np.ndarray, T: np.ndarray,
                              p_alive: np.ndarray) -> np.ndarray:
    """Probability of no purchase in the next ``t`` (model time units) of a BG/NBD-type model, shape (n,).

    A dead customer never buys; an alive one stays alive without purchases (BG/NBD and
    MBG/NBD drop out only right after a purchase) and buys as Poisson(lambda) with
    posterior lambda ~ Gamma(r + x, alpha + T) (FHL 2005, section 3), so
    ``P = (1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)``.
    """
    T = np.asarray(T, dtype=float)
    stay_silent = ((alpha + T) / (alpha + T + t)) ** (r + np.asarray(frequency, dtype=float))
    return (1.0 - p_alive) + p_alive * stay_silent


def pmf_if_alive(r: float, alpha: float, a: float, b_post: np.ndarray, t: float, k_max: int, x: np.ndarray,
                 T: np.ndarray) -> np.ndarray:
    """P(X = k | alive at T), k = 0..k_max, of a BG/NBD-type customer (dropout right after a purchase).

    Given alive at T, ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b_post)``
    (``b + x`` for BG/NBD, ``b + x + 1`` for MBG/NBD). Of ``N ~ Poisson(lambda t)`` arrivals
    the customer keeps buying until the purchase after which they drop out (the ``G``-th,
    ``G ~ Geometric(p)`` on 1, 2, ...), so ``X = min(N, G)`` and (FHL's note "Deriving the
    conditional PMF of purchases" for BG/NBD)::

        P(X = 0) = P(N = 0)
        P(X = k) = P(N = k) B(a, b_post+k-1)/B(a, b_post) + P(N > k) B(a+1, b_post+k-1)/B(a, b_post)

    with ``P(N = k)`` the negative binomial of :func:`log_nbd_pmf`. Shape ``(n, k_max + 1)``.
    """
    nbd = np.exp(log_nbd_pmf(r + x, alpha + T, t, k_max))
    tail = np.maximum(1.0 - np.cumsum(nbd, axis=1), 0.0)  # P(N > k)
    b_post = np.asarray(b_post, dtype=float)[:, None]
    a = np.asarray(a, dtype=float)
    a = a[:, None] if a.ndim else a  # per-customer a (covariates)
    k = np.arange(1, k_max + 1, dtype=float)
    out = np.empty_like(nbd)
    out[:, 0] = nbd[:, 0]
    base = betaln(a, b_post)
    out[:, 1:] = (nbd[:, 1:] * np.exp(betaln(a, b_post + k - 1.0) - base)
                  + tail[:, 1:] * np.exp(betaln(a + 1.0, b_post + k - 1.0) - base))
    return out
