"""Pareto/NBD: Poisson purchases while alive, exponential lifetimes, gamma heterogeneity in both.

Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your Customers: Who
Are They and What Will They Do Next?", Management Science 33(1), 1-24 (SMC 1987); the
likelihood in the numerically stable form of Fader, P. S., Hardie, B. G. S. and Lee, K. L.
(2005), "A Note on Implementing the Pareto/NBD Model in MATLAB" (FHL note, eqs. 1-3).

While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(shape r,
rate alpha)`` and dies at an exponential time with rate ``mu ~ Gamma(shape s, rate
beta)``. Inputs ``frequency`` x, ``recency`` t_x and ``T`` are in one time unit of the
caller's choosing; ``alpha`` and ``beta`` are in that unit (``r``, ``s`` are unit-free).

The fit's likelihood, its analytic gradient (:func:`pareto_nbd_rows`) and Hessian
(:func:`pareto_nbd_rows_hessian`) take the FHL note's integral and its first and second
parameter derivatives from one Gauss-Legendre quadrature (:func:`band_moments`); the
predictions use the note's 2F1 form (:func:`log_tail_integral`), which agrees with the
quadrature to 3e-12 in log on the 379,124 distinct rows of ``benchmarks/purchase_bench.py``'s
1M customers but is nan for some extreme rows (x = 300 with the 2F1 argument at 0.999).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1, polygamma

from custscore.threads import for_each_block
from custscore.training.diagnostics import generic_warnings
from custscore.training.fitting import PointMemo, check_rfm
from custscore.training.purchase_models import (DistinctPairs, MaximumLikelihoodPurchaseModel, RowLikelihood,
                                                check_horizon, log_nbd_coefficients, log_nbd_pmf, on_pairs)

PARAM_NAMES = ("r", "alpha", "s", "beta")
PROCESSES = {"r": "purchase rate", "alpha": "purchase rate", "s": "dropout", "beta": "dropout"}
_CONSEQUENCE = "P(alive), expected purchases and CLV are uncertain; compare them with days since last purchase"
#: Gauss-Legendre nodes of the integral over the death time in :meth:`ParetoNBDModel._pmf_if_alive`.
_PMF_NODES = 48
#: Gauss-Legendre nodes per panel of :func:`band_moments`.
_BAND_NODES = 20
#: :func:`band_moments` integrates from the mode of the band density over panels in each of
#: which its logarithm falls by this many nats ...
_PANEL_DROP = 12.0
#: ... three of them: the density is cut at exp(-36) = 2.3e-16 of its peak.
_PANELS_AFTER_MODE = 3


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
    """``ln int_lo^hi (alpha+u)**-p (beta+u)**-q du`` (-inf when lo == hi), from :func:`log_tail_integral`.

    Rows where scipy's 2F1 fails (not finite) are redone by quadrature (:func:`repair_band`).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        tails = log_band_from_tails(log_tail_integral(p, q, alpha, beta, lo), log_tail_integral(p, q, alpha, beta, hi))
    return repair_band(tails, p, q, alpha, beta, lo, hi)


def repair_band(log_band: np.ndarray, p: Any, q: Any, alpha: Any, beta: Any, lo: Any, hi: Any) -> np.ndarray:
    """``log_band`` (the 2F1 form of the band integral) with its failed rows (nan or +inf) redone.

    Rows with lo < hi take :func:`band_moments`, empty bands (lo == hi) -inf.

    scipy's hyp2f1 overflows for large first parameters with the argument near 1 (x ~ 300,
    z = 0.999; or a fit along an unidentified ridge, beta ~ 1e7 days): those rows, usually
    none, take the quadrature's value.
    """
    args = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (log_band, p, q, alpha, beta, lo, hi)))
    failed = ~np.isfinite(args[0]) & ~(args[0] == -np.inf)
    if not np.any(failed):
        return log_band
    out = np.array(args[0], dtype=float)
    bad = failed & (args[5] < args[6])
    out[failed & ~bad] = -np.inf  # an empty band (lo == hi) whose two tails both overflowed
    out[bad] = band_moments(*(v[bad] for v in args[1:]))[0]
    return out


def log_band_from_tails(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``ln(exp(upper) - exp(lower))`` of two :func:`log_tail_integral` values (lower <= upper)."""
    with np.errstate(divide="ignore"):
        return upper + np.log1p(-np.exp(np.minimum(lower - upper, 0.0)))


def band_moments(p: Any, q: Any, alpha: Any, beta: Any, lo: Any, hi: Any,
                 second: bool = False) -> tuple[np.ndarray, ...]:
    """``ln int_lo^hi (alpha+u)**-p (beta+u)**-q du`` (lo < hi) and means under that band's density f.

    Returns ``(log_integral, m_alpha, m_beta, e_alpha, e_beta)``, the means ``E_f[ln((alpha+u)/(alpha+lo))]``,
    ``E_f[ln((beta+u)/(beta+lo))]`` (unit-free), ``E_f[1/(alpha+u)]``, ``E_f[1/(beta+u)]``
    (per time unit): the derivatives of ``ln int_lo^hi (alpha+u)**-p (beta+u)**-q du`` in
    ``p``, ``q``, ``alpha``, ``beta`` are ``-ln(alpha+lo) - m_alpha``, ``-ln(beta+lo) - m_beta``,
    ``-p e_alpha``, ``-q e_beta`` (differentiation under the integral; no 2F1 form for the first two).
    With ``second``, a sixth item: the covariance matrix under f of
    ``(ln(alpha+u), 1/(alpha+u), ln(beta+u), 1/(beta+u))``, shape ``(4, 4) + p.shape``
    (units: 1, per time unit, 1, per time unit), from the same nodes; the second
    derivatives of the log-integral are that covariance scaled by ``(-1, -p, -1, -q)`` plus
    ``E_f`` of the integrand's second log-derivatives (:func:`pareto_nbd_rows`). The
    products are accumulated about the variables' values at the mode, so a narrow band
    density does not cancel ``E[XY] - E[X] E[Y]`` away.

    With ``a >= b`` the larger and smaller of (alpha, beta) and ``p_a``, ``p_b`` their
    exponents, the variable ``v = ln((b+u)/(b+lo))`` in ``[0, V]``, ``V = ln((b+hi)/(b+lo))``, gives
    ``(alpha+u)**-p (beta+u)**-q du = (b+lo)**(1-p-q) exp(g(v)) dv``, ``g(v) = -(p+q-1) v - p_a ln(1 + kappa e^-v)``, ``kappa = (a-b)/(b+lo) >= 0``,
    ``ln(b+u) = ln(b+lo) + v`` and ``ln(a+u) = ln(a+lo) + v + ln((1 + kappa e^-v)/(1 + kappa))``.
    In ``v`` the integrand's singularities sit at ``Im v = +-pi`` however close alpha and beta
    come to the FHL note's ``z = 1`` (in ``u`` the one at ``u = -b`` nears the interval), and
    ``g`` is concave: the density is unimodal. Gauss-Legendre (:data:`_BAND_NODES` nodes) on
    ``[0, mode]`` and on :data:`_PANELS_AFTER_MODE` panels after the mode, each ending where
    ``g`` has fallen by another :data:`_PANEL_DROP` nats (Newton from ``V``, which stays on
    the right of the root of a concave ``g``), or at ``V``; the cut tail is below 2.3e-16 of
    the peak. Unlike the 2F1 form (:func:`log_band_integral`; scipy's hyp2f1 loses digits
    near z = 1 for large first parameters and overflows at x ~ 100) this stays accurate on
    the grid of ``tests/test_paretonbd_gradient.py`` (against mpmath).
    """
    p, q, alpha, beta, lo, hi = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, alpha, beta, lo, hi)))
    swap = alpha < beta
    a, b = np.where(swap, beta, alpha), np.where(swap, alpha, beta)
    pa = np.where(swap, q, p)
    base = b + lo
    kappa = (a - b) / base
    V = np.log1p((hi - lo) / base)
    P1 = p + q - 1.0
    log1p_kappa = np.log1p(kappa)

    def g(v: np.ndarray) -> np.ndarray:
        return -P1 * v - pa * np.log1p(kappa * np.exp(-v))

    def slope(v: np.ndarray) -> np.ndarray:
        ke = kappa * np.exp(-v)
        return -P1 + pa * ke / (1.0 + ke)

    ratio = P1 / pa  # the mode is interior when g'(0) > 0, i.e. kappa / (1 + kappa) > ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        mode = np.where(ratio < 1.0, np.log(kappa * (1.0 - ratio) / ratio), 0.0)
    mode = np.clip(np.nan_to_num(mode, nan=0.0, neginf=0.0), 0.0, V)
    g_mode = g(mode)
    edges = [np.zeros(p.shape), mode]
    for k in range(1, _PANELS_AFTER_MODE + 1):
        target, v = g_mode - k * _PANEL_DROP, V.copy()
        for _ in range(8):
            gv = g(v)
            v = np.where(gv < target, v + (target - gv) / slope(v), v)
        edges.append(np.clip(v, edges[-1], V))
    panels = list(zip(edges[:-1], edges[1:]))[0 if np.any(mode > 0) else 1:]
    nodes, weights = np.polynomial.legendre.leggauss(_BAND_NODES)
    shrink = kappa / (1.0 + kappa)

    def variables(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``ln((1 + kappa e^-v) / (1 + kappa))`` (exact near v = 0), ``e^-v`` and ``e^-v / (1 + kappa e^-v)``."""
        em1 = np.expm1(-v)
        e = 1.0 + em1
        return np.log1p(shrink * em1), e, e / (1.0 + kappa * e)

    if second:  # ln((a+u)/(a+lo)), base/(a+u), ln((b+u)/(b+lo)), base/(b+u) at the mode
        rel_m, e_m, ea_m = variables(mode)
        centre = (mode + rel_m, ea_m, mode, e_m)
        first = [np.zeros(p.shape) for _ in range(4)]
        products = {(i, j): np.zeros(p.shape) for i in range(4) for j in range(i, 4)}
    mass, sum_v, sum_rel, sum_e, sum_ea = (np.zeros(p.shape) for _ in range(5))
    for left, right in panels:
        half = 0.5 * (right - left)
        for t, wt in zip(nodes, weights):
            v = left + half * (t + 1.0)
            rel, e, ea = variables(v)
            h = wt * half * np.exp(-P1 * v - pa * (rel + log1p_kappa) - g_mode)
            mass += h
            sum_v += h * v
            sum_rel += h * rel
            sum_e += h * e
            sum_ea += h * ea
            if second:
                d = [value - c for value, c in zip((v + rel, ea, v, e), centre)]
                hd = [h * di for di in d]
                for i in range(4):
                    first[i] += hd[i]
                    for j in range(i, 4):
                        products[i, j] += hd[i] * d[j]
    log_integral = (1.0 - p - q) * np.log(base) + g_mode + np.log(mass)
    mean_b = sum_v / mass
    mean_a = mean_b + sum_rel / mass
    inv_b, inv_a = sum_e / mass / base, sum_ea / mass / base
    out = (log_integral, np.where(swap, mean_b, mean_a), np.where(swap, mean_a, mean_b),
           np.where(swap, inv_b, inv_a), np.where(swap, inv_a, inv_b))
    if not second:
        return out
    units = (1.0, 1.0 / base, 1.0, 1.0 / base)  # the 1/(a+u), 1/(b+u) variables were in units of 1/base
    cov = np.empty((4, 4) + p.shape)
    for (i, j), total in products.items():
        cov[i, j] = cov[j, i] = (total / mass - (first[i] / mass) * (first[j] / mass)) * units[i] * units[j]
    # frame (a, b) -> (alpha, beta): swapped rows exchange the (ln, inverse) pairs
    order = np.array([2, 3, 0, 1])
    cov = np.where(swap, cov[order][:, order], cov)
    return out + (cov,)


def pareto_nbd_rows(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                    gradient: bool = True) -> tuple[np.ndarray, Optional[list[np.ndarray]]]:
    """Per-row Pareto/NBD log-likelihood and (``gradient``) its derivatives in ``(r, alpha, s, beta)``.

    ``LL = C + logaddexp(A, B)`` (FHL note, eq. 1 in logs) with

    - C = lnG(r+x) - lnG(r) + r ln(alpha) + s ln(beta)
    - A = -(r+x) ln(alpha+T) - s ln(beta+T)   (alive at T)
    - B = ln(s) + ln int_{t_x}^T (alpha+u)**-(r+x) (beta+u)**-(s+1) du   (died in (t_x, T]; -inf if t_x = T)

    the integral and its derivatives by :func:`band_moments` (``p = r+x``, ``q = s+1``).
    With ``pi_A = exp(A - logaddexp(A, B))`` (P(alive at T) given the history), ``pi_B = 1 - pi_A``
    and ``dLL = dC + pi_A dA + pi_B dB``:

    - d/dr     = psi(r+x) - psi(r) - pi_A ln(1 + T/alpha) - pi_B [ln(1 + t_x/alpha) + m_alpha]
    - d/dalpha = r/alpha - (r+x) [pi_A / (alpha+T) + pi_B e_alpha]
    - d/ds     = -pi_A ln(1 + T/beta) + pi_B [1/s - ln(1 + t_x/beta) - m_beta]
    - d/dbeta  = s/beta - pi_A s / (beta+T) - pi_B (s+1) e_beta

    Units: alpha, beta, t_x, T in one time unit, the alpha and beta derivatives per that
    unit. ``params`` hold scalars or per-row arrays (covariates); blocks of rows run on all
    cores. Returns ``(LL, [d/dr, d/dalpha, d/ds, d/dbeta] or None)``, arrays of the shape of ``x``.
    """
    value, grads, _ = _rows(params, x, t_x, T, 1 if gradient else 0)
    return value, grads


def pareto_nbd_rows_hessian(params: Any, x: np.ndarray, t_x: np.ndarray,
                            T: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """:func:`pareto_nbd_rows` (value, gradient) and the per-row Hessian in ``(r, alpha, s, beta)``.

    The Hessian has shape ``(4, 4) + x.shape``; per-row relative error <= 1e-7 against mpmath on
    ``tests/test_paretonbd_gradient.py``'s grid (``tests/test_paretonbd_hessian.py``).

    From the same quadrature (:func:`band_moments` with ``second``):
    ``Hess LL = Hess C + pi_A Hess A + pi_B Hess B + pi_A pi_B (dA - dB)(dA - dB)'`` (the second
    derivative of logaddexp), with the closed forms

    - Hess C: ``psi'(r+x) - psi'(r)`` (r, r), ``1/alpha`` (r, alpha), ``-r/alpha**2`` (alpha, alpha),
      ``1/beta`` (s, beta), ``-s/beta**2`` (beta, beta);
    - Hess A: ``-1/(alpha+T)`` (r, alpha), ``(r+x)/(alpha+T)**2`` (alpha, alpha), ``-1/(beta+T)`` (s, beta),
      ``s/(beta+T)**2`` (beta, beta);

    and ``Hess B = -1/s**2`` at (s, s) plus the log-integral's: ``Cov_f(g) + E_f[dg]``, ``g`` the
    integrand's log-derivatives ``(-ln(alpha+u), -p/(alpha+u), -ln(beta+u), -q/(beta+u))``, whose
    own derivatives are ``-1/(alpha+u)`` (r, alpha), ``p/(alpha+u)**2`` (alpha, alpha), ``-1/(beta+u)``
    (s, beta) and ``q/(beta+u)**2`` (beta, beta). Alpha and beta entries per time unit (squared
    for (alpha, alpha), (alpha, beta), (beta, beta)).
    """
    return _rows(params, x, t_x, T, 2)


def _rows(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
          order: int) -> tuple[np.ndarray, Optional[list[np.ndarray]], Optional[np.ndarray]]:
    """Value, and up to ``order`` (0, 1, 2) gradient and Hessian per row: :func:`pareto_nbd_rows_hessian`."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    value = np.empty(x.shape)
    grads = [np.empty(x.shape) for _ in range(4)] if order >= 1 else None
    hess = np.empty((4, 4) + x.shape) if order >= 2 else None

    def block(rows: slice) -> None:
        r, alpha, s, beta = (np.broadcast_to(np.asarray(v, dtype=float), x.shape)[rows] for v in params)
        xb, lo, hi = x[rows], t_x[rows], T[rows]
        band = lo < hi
        moments = [np.full(xb.shape, -np.inf)] + [np.zeros(xb.shape) for _ in range(4)]
        if order >= 2:
            moments.append(np.zeros((4, 4) + xb.shape))
        if np.any(band):
            found = band_moments(*(w[band] for w in (r + xb, s + 1.0, alpha, beta, lo, hi)), second=order >= 2)
            for out, v in zip(moments, found):
                out[..., band] = v
        log_integral, m_alpha, m_beta, e_alpha, e_beta = moments[:5]
        C = gammaln(r + xb) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        A = -(r + xb) * np.log(alpha + hi) - s * np.log(beta + hi)
        B = np.log(s) + log_integral
        both = np.logaddexp(A, B)
        value[rows] = C + both
        if grads is None:
            return
        pi_B = np.exp(B - both)
        pi_A = 1.0 - pi_B
        grads[0][rows] = (digamma(r + xb) - digamma(r) - pi_A * np.log1p(hi / alpha)
                          - pi_B * (np.log1p(lo / alpha) + m_alpha))
        grads[1][rows] = r / alpha - (r + xb) * (pi_A / (alpha + hi) + pi_B * e_alpha)
        grads[2][rows] = -pi_A * np.log1p(hi / beta) + pi_B * (1.0 / s - np.log1p(lo / beta) - m_beta)
        grads[3][rows] = s / beta - pi_A * s / (beta + hi) - pi_B * (s + 1.0) * e_beta
        if hess is None:
            return
        p, q = r + xb, s + 1.0
        cov = moments[5]
        scale = (-1.0, -p, -1.0, -q)
        h_B = np.array([[scale[i] * scale[j] * cov[i, j] for j in range(4)] for i in range(4)])
        a_T, b_T = alpha + hi, beta + hi
        h_B[0, 1] = h_B[1, 0] = h_B[0, 1] - e_alpha
        h_B[1, 1] += p * (cov[1, 1] + e_alpha**2)
        h_B[2, 3] = h_B[3, 2] = h_B[2, 3] - e_beta
        h_B[3, 3] += q * (cov[3, 3] + e_beta**2)
        # dA - dB = diff - 1/s at s (the ln(s) of B): d/dr and d/ds as m - ln((alpha+T)/(alpha+t_x)), exact
        # for t_x near T. The -1/s**2 of Hess B and the 1/s**2 of the outer product give -pi_B**2/s**2,
        # taken as such: when pi_B is ~1e-10 (t_x within 1e-4 of T) the two terms cancel to 1e-19.
        diff = (m_alpha - np.log1p((hi - lo) / (alpha + lo)), p * (e_alpha - 1.0 / a_T),
                m_beta - np.log1p((hi - lo) / (beta + lo)), q * e_beta - s / b_T)
        both_pi = np.exp(A - both) * pi_B  # pi_A pi_B, pi_A exact when small
        h = pi_B * h_B + both_pi * np.array([[diff[i] * diff[j] for j in range(4)] for i in range(4)])
        for j in range(4):
            h[2, j] -= both_pi * diff[j] / s
            h[j, 2] -= both_pi * diff[j] / s
        h[2, 2] -= pi_B**2 / s**2
        h[0, 0] += polygamma(1, p) - polygamma(1, r)
        cross_a = 1.0 / alpha - pi_A / a_T
        cross_b = 1.0 / beta - pi_A / b_T
        h[0, 1] += cross_a
        h[1, 0] += cross_a
        h[1, 1] += -r / alpha**2 + pi_A * p / a_T**2
        h[2, 3] += cross_b
        h[3, 2] += cross_b
        h[3, 3] += -s / beta**2 + pi_A * s / b_T**2
        hess[:, :, rows] = h

    for_each_block(block, len(x))
    return value, grads, hess


def pareto_nbd_log_likelihood_rows(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-row Pareto/NBD log-likelihood ``ln L(r, alpha, s, beta | x, t_x, T)``, shape of ``x`` (:func:`pareto_nbd_rows`)."""
    return pareto_nbd_rows(params, x, t_x, T, gradient=False)[0]


class ParetoNBDLikelihood(RowLikelihood):
    """The weighted Pareto/NBD log-likelihood (FHL note, eq. 1) with its analytic gradient and Hessian.

    Value and gradient from one pass of :func:`pareto_nbd_rows`, the Hessian (with value and
    gradient, remembered for that point: Newton's steps ask for all three) from one pass of
    :func:`pareto_nbd_rows_hessian`, both on the same quadrature nodes; natural parameters
    (alpha, beta in the data's time unit).
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        super().__init__(x, t_x, T, weights)
        self._memo = PointMemo()

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.asarray(params, dtype=float)
        found = self._memo.value_and_gradient(params)
        if found is not None:
            return found
        return self._weighted(*pareto_nbd_rows(list(params), self.x, self.t_x, self.T))

    def _weighted(self, value: np.ndarray, per_row: Sequence[np.ndarray]) -> tuple[float, np.ndarray]:
        """``(sum_i w_i LL_i, [sum_i w_i dLL_i/dtheta_j])`` of per-row values and gradients."""
        return float(np.dot(self.w, value)), np.array([float(np.dot(self.w, g)) for g in per_row])

    def hessian(self, params: np.ndarray) -> np.ndarray:
        """Second derivatives of ``sum_i w_i LL_i`` in ``(r, alpha, s, beta)``, shape (4, 4) (alpha, beta per time unit)."""
        params = np.asarray(params, dtype=float)
        found = self._memo.hessian(params)
        if found is not None:
            return found
        value, per_row, per_row_hessian = pareto_nbd_rows_hessian(list(params), self.x, self.t_x, self.T)
        hessian = per_row_hessian @ self.w
        self._memo.remember(params, *self._weighted(value, per_row), hessian)
        return hessian.copy()


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
    #: each row costs a quadrature (up to 4 panels of 20 nodes) per likelihood evaluation and a fit takes hundreds:
    #: merging always pays
    MERGE_ROWS_UP_TO = None

    def _likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> ParetoNBDLikelihood:
        return ParetoNBDLikelihood(x, t_x, T, w)

    def _row_log_likelihood(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        return pareto_nbd_log_likelihood_rows(theta, x, t_x, T)

    def _row_gradient(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[np.ndarray]:
        return pareto_nbd_rows(theta, x, t_x, T)[1]

    def _row_value_and_gradient(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray,
                                T: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        return pareto_nbd_rows(theta, x, t_x, T)

    def _row_value_gradient_hessian(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray,
                                    T: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        return pareto_nbd_rows_hessian(theta, x, t_x, T)

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
        (per customer with covariates, :class:`~custscore.training.purchase_models.DistinctPairs`);
        customers whose 2F1s fail take the quadrature (:func:`repair_band`).
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        params = self._params(covariates, len(x))
        at_T, at_t_x = DistinctPairs(x, t_cal, params), DistinctPairs(x, t_x, params)

        def tail(pairs: DistinctPairs) -> np.ndarray:
            r, alpha, s, beta = pairs.params
            return pairs.expand(log_tail_integral(r + pairs.x, s + 1.0, alpha, beta, pairs.T))

        r, alpha, s, beta = at_T.params
        A = at_T.expand(-(r + at_T.x) * np.log(alpha + at_T.T) - s * np.log(beta + at_T.T))
        with np.errstate(invalid="ignore", over="ignore"):
            band = log_band_from_tails(tail(at_t_x), tail(at_T))
        r, alpha, s, beta = params
        B = np.log(s) + repair_band(band, r + x, s + 1.0, alpha, beta, t_x, t_cal)
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
