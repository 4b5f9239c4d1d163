"""The purchase-model interface: what scoring needs from any BTYD model of repeat purchases.

A purchase model is fitted on per-customer sufficient statistics ``(x, t_x, T)``
(``frequency`` = repeat purchases, ``recency`` = time of the last purchase since the
first, ``T`` = time since the first purchase, all in ONE time unit of the caller's
choosing; rate-like parameters such as ``alpha`` are in that unit) and predicts, per
customer, P(alive), conditional expected purchases and the probability of no purchase in
a horizon. :class:`PurchaseModel` is the protocol callers use without naming a model;
:class:`MaximumLikelihoodPurchaseModel` is the shared fit of the models in
:mod:`custscore.training.bgnbd`, :mod:`custscore.training.mbgnbd` and
:mod:`custscore.training.paretonbd` on the fitting core (:mod:`custscore.training.fitting`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd
from scipy.special import gammaln

from custscore.errors import CustscoreError, FitError
from custscore.training.diagnostics import fit_diagnostics
from custscore.training.fitting import (
    ESTIMATOR_CONSTRAINTS,
    FitSettings,
    Likelihood,
    check_hyperparameters,
    check_rfm,
    check_weights,
    fit_log_params,
    inverse_or_none,
    PairIndex,
    PointMemo,
    numerical_hessian,
    systematic_sample,
    total_weight,
    unique_rows,
    value_index,
)
from custscore.threads import map_in_threads

#: Fewer customers than this cannot identify four parameters: refuse rather than guess.
MIN_CUSTOMERS = 10
#: Up to this many customers, identical (x, t_x, T) rows are merged before fitting. Above
#: it the merge (a sort) costs more than it saves: a large fit passes over the full data only
#: a few times (3 for the 1M-customer benchmark; :func:`custscore.training.fitting.fit_log_params`).
#: A model whose rows are expensive sets its own ``MERGE_ROWS_UP_TO`` (None: always merge).
MERGE_ROWS_UP_TO = 200_000
#: Purchase counts of the first try of :meth:`MaximumLikelihoodPurchaseModel.purchase_quantiles`
#: (k = 0..15); rows whose distribution reaches further are redone with 4 times as many.
_FIRST_K_MAX = 15
#: Rows per block of the predictive distribution (its temporaries stay a few MB).
_PMF_BLOCK_ROWS = 1 << 14
#: Rows per block of :meth:`CovariateLikelihood.hessian`'s per-row Jacobians (a few MB).
_CHAIN_BLOCK_ROWS = 1 << 14
#: Relative step of the central differences of per-row log-likelihoods (truncation and
#: rounding errors both ~1e-10 relative).
GRADIENT_STEP = 1e-5
#: From this many customers on, what depends on ``(x, T)`` only is evaluated once per
#: distinct pair (:class:`DistinctPairs`; tens of thousands for millions of customers counted in days).
DEDUPE_FROM = 10_000


def coefficient_name(param: str, column: str) -> str:
    """Name of the coefficient of covariate ``column`` on parameter ``param`` (``gamma_alpha_age``)."""
    return f"gamma_{param}_{column}"


def check_covariates(covariates: Any, n: int, names: Optional[Sequence[str]] = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(Z, column names)``: encoded covariates as a finite float matrix of shape ``(n, k)``.

    ``covariates`` is a DataFrame of numeric columns (names from its columns) or a 2-D
    array (names ``z0, z1, ...``, or ``names``); with ``names`` a DataFrame must have exactly
    those columns in that order and an array that many columns.
    """
    if isinstance(covariates, pd.DataFrame):
        given: tuple[str, ...] = tuple(str(c) for c in covariates.columns)
        if names is not None and given != tuple(names):
            raise CustscoreError(f"covariates: expected columns {list(names)}, got {list(given)}")
        if any(not pd.api.types.is_numeric_dtype(covariates[c]) or pd.api.types.is_bool_dtype(covariates[c])
               for c in covariates.columns):
            raise CustscoreError("covariates: every column must be numeric (encode categories first)")
        Z = covariates.to_numpy(dtype=float)
    else:
        Z = np.asarray(covariates)
        if Z.ndim != 2 or Z.dtype.kind not in "iuf":
            raise CustscoreError(f"covariates: must be a numeric matrix (customers x columns), got shape {Z.shape}")
        Z = Z.astype(float)
        given = tuple(names) if names is not None else tuple(f"z{j}" for j in range(Z.shape[1]))
        if len(given) != Z.shape[1]:
            raise CustscoreError(f"covariates: expected {len(given)} columns, got {Z.shape[1]}")
    if Z.shape[0] != n:
        raise CustscoreError(f"covariates: must have one row per customer ({n}), got {Z.shape[0]}")
    if not np.all(np.isfinite(Z)):
        i, j = (int(v[0]) for v in np.nonzero(~np.isfinite(Z)))
        raise CustscoreError(f"covariates: must be finite; row {i} column {given[j]!r} has {Z[i, j]!r}")
    return Z, given


def linked_parameters(base: Sequence[Any], param_names: Sequence[str], links: Sequence[tuple[str, float]],
                      gammas: np.ndarray, Z: np.ndarray) -> list[Any]:
    """Per-customer parameters with time-invariant covariates (Fader and Hardie 2007 note).

    For each linked parameter ``p`` with sign ``sign`` (``links``), ``p_i = p0 exp(sign gamma_p' z_i)``,
    ``gammas[j]`` the coefficients of the j-th link, shape ``(n_links, k)``; the other
    parameters stay scalars. Returns the parameters in ``param_names`` order, arrays of shape ``(n,)``.
    """
    out = list(base)
    for (param, sign), gamma in zip(links, gammas):
        i = list(param_names).index(param)
        out[i] = out[i] * np.exp(sign * (Z @ gamma))
    return out


def row_gradient_by_differences(row_log_likelihood: Callable[..., np.ndarray], theta: Sequence[Any],
                                x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[np.ndarray]:
    """Per-row derivatives ``d LL_i / d theta_j`` by central differences in relative steps (:data:`GRADIENT_STEP`).

    ``theta`` holds scalars or per-row arrays; one array of shape ``(n,)`` per parameter.
    """
    out = []
    for j in range(len(theta)):
        step = GRADIENT_STEP * np.asarray(theta[j], dtype=float)
        up, down = list(theta), list(theta)
        up[j], down[j] = theta[j] + step, theta[j] - step
        out.append((row_log_likelihood(up, x, t_x, T) - row_log_likelihood(down, x, t_x, T)) / (2.0 * step))
    return out


def params_at(params: Sequence[Any], rows: Any) -> tuple[Any, ...]:
    """``params`` (scalars or per-customer arrays) at ``rows``: arrays indexed, scalars kept."""
    return tuple(p[rows] if np.ndim(p) else p for p in params)


class DistinctPairs:
    """The distinct ``(x, T)`` pairs of customers (``x``, ``T``, ``n``), each customer's pair, the parameters there.

    Every model's prediction given alive at T (expected purchases, their distribution)
    depends on ``(x, T)`` and the parameters only: it is evaluated on the pairs and
    :meth:`expand`-ed to the customers. Up to :data:`DEDUPE_FROM` customers, or when any of
    ``params`` is per customer (covariates: customers with one pair differ), each customer
    is its own pair. ``params`` (scalars or arrays ``(n_customers,)``) become ``self.params``
    aligned with the pairs.
    """

    def __init__(self, x: np.ndarray, T: np.ndarray, params: Sequence[Any] = ()) -> None:
        per_customer = any(np.ndim(p) for p in params)
        dedupe = len(x) > DEDUPE_FROM and not per_customer
        self._index = PairIndex(value_index(x), value_index(T)) if dedupe else None
        self.x, self.T = (x, T) if self._index is None else (self._index.a, self._index.b)
        self.params = tuple(params)
        self.n = len(self.x)
        self._rows = len(x)

    def inverse(self) -> np.ndarray:
        """Each customer's position among the pairs, shape ``(n_customers,)``."""
        return np.arange(self._rows) if self._index is None else self._index.of(slice(None))

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per-pair ``values`` (first axis: pairs) as per-customer values."""
        return values if self._index is None else values[self._index.of(slice(None))]


def log_nbd_coefficients(shape: Any, k_max: int) -> np.ndarray:
    """``lnG(shape+k) - lnG(shape) - ln k!``, k = 0..k_max: the part of :func:`log_nbd_pmf` free of t."""
    shape = np.asarray(shape, dtype=float)[..., None]
    k = np.arange(k_max + 1, dtype=float)
    return gammaln(shape + k) - gammaln(shape) - gammaln(k + 1.0)


def log_nbd_pmf(shape: np.ndarray, rate: np.ndarray, t: Any, k_max: int,
                coefficients: Optional[np.ndarray] = None) -> np.ndarray:
    """``ln P(N = k)``, k = 0..k_max, of a Poisson(lambda t) count with lambda ~ Gamma(shape, rate).

    ``lnG(shape+k) - lnG(shape) - ln k! + shape ln(rate/(rate+t)) + k ln(t/(rate+t))``; ``shape``
    and ``rate`` broadcast against ``t`` (all shape ``(n,)`` or scalars); ``coefficients`` are
    :func:`log_nbd_coefficients` of ``shape`` when the caller has them. Shape ``(n, k_max + 1)``.
    """
    shape, rate, t = (np.asarray(v, dtype=float)[..., None] for v in np.broadcast_arrays(shape, rate, t))
    if coefficients is None:
        coefficients = log_nbd_coefficients(shape[..., 0], k_max)
    k = np.arange(k_max + 1, dtype=float)
    with np.errstate(divide="ignore"):
        return coefficients + shape * np.log(rate / (rate + t)) + k * np.log(t / (rate + t))


def on_pairs(fn: Callable[..., np.ndarray], t: np.ndarray, x: np.ndarray, T: np.ndarray,
             params: Sequence[Any]) -> np.ndarray:
    """``fn(t, x, T, params)`` of a function of ``(x, T)``, the parameters and the horizon ``t``.

    Once per distinct pair for a scalar ``t`` and scalar ``params`` (:class:`DistinctPairs`).
    """
    if np.ndim(t) != 0:
        return fn(t, x, T, params)
    pairs = DistinctPairs(x, T, params)
    return pairs.expand(fn(t, pairs.x, pairs.T, pairs.params))


@runtime_checkable
class PurchaseModel(Protocol):
    """A fitted (or fittable) model of repeat purchases; every time in the model's unit.

    ``params_`` (dict name -> float), ``log_likelihood_`` (summed over customers),
    ``warnings_`` (texts without the ``warning: `` prefix) and ``diagnostics_`` (plain data)
    exist after :meth:`fit`. Each prediction returns an array of shape ``(n_customers,)``.
    A model fitted with ``covariates`` (encoded, one row per customer) needs them, in the
    same columns, for every prediction; one fitted without refuses them.
    """

    #: short name in options, params and score tables (``bgnbd``, ``mbgnbd``, ``pnbd``)
    KEY: str
    #: name in messages (``BG/NBD``)
    MODEL_NAME: str
    #: prefix of the model's parameters in MLflow params (``""`` for the reference BG/NBD)
    PARAM_PREFIX: str
    params_: dict[str, float]
    log_likelihood_: float
    warnings_: tuple[str, ...]
    diagnostics_: dict[str, Any]
    variance_matrix_: Optional[pd.DataFrame]

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None,
            covariates: Any = None) -> "PurchaseModel": ...

    def p_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray: ...

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any,
                           covariates: Any = None) -> np.ndarray: ...

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray: ...

    def discounted_expected_purchases(self, step_ends: Any, discount_factors: Any, frequency: Any, recency: Any,
                                      T: Any, covariates: Any = None) -> np.ndarray: ...

    def purchase_pmf(self, t: Any, frequency: Any, recency: Any, T: Any, k_max: int,
                     covariates: Any = None) -> np.ndarray: ...

    def purchase_quantiles(self, t: Any, frequency: Any, recency: Any, T: Any,
                           levels: tuple[float, ...] = (0.1, 0.9), covariates: Any = None) -> list[np.ndarray]: ...


def check_steps(step_ends: Any, discount_factors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Step ends (increasing, >= 0, model unit) and one discount factor per step, as float arrays."""
    ends = np.atleast_1d(np.asarray(step_ends, dtype=float))
    factors = np.atleast_1d(np.asarray(discount_factors, dtype=float))
    if ends.shape != factors.shape or np.any(np.diff(ends) <= 0) or np.any(ends < 0):
        raise CustscoreError("step_ends: must increase, be >= 0 and match discount_factors")
    return ends, factors


def check_horizon(t: Any) -> np.ndarray:
    """A prediction horizon ``t`` (model time unit) as a float array, finite and >= 0."""
    t = np.asarray(t, dtype=float)
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise CustscoreError(f"t: must be finite and >= 0, got {t!r}")
    return t


class CovariateLikelihood:
    """Weighted log-likelihood of a purchase model whose parameters vary by customer.

    Fader and Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD
    and BG/NBD models" (note 019): each linked parameter is ``p_i = p0 exp(sign gamma_p' z_i)``
    (:func:`linked_parameters`; ``model.COVARIATE_LINKS`` gives the parameters and signs).
    ``params`` are the base parameters (``model.PARAM_NAMES``, natural scale) followed by
    the coefficients, one block of ``k`` per link. The row log-likelihood is the model's
    own (``model._row_log_likelihood`` with per-row parameters), the gradient the chain rule
    through its per-row gradient (``model._row_gradient``: analytic where the model has
    one, central differences otherwise; both from ``model._row_value_and_gradient``):
    ``dLL/dp0 = sum_i w_i dLL_i/dp_i p_i / p0`` and ``dLL/dgamma_p = sum_i w_i dLL_i/dp_i p_i sign z_i``.
    The Hessian chains the model's per-row Hessian where it has one (``model._row_value_gradient_hessian``):
    ``sum_i w_i J_i' H_i J_i`` (``J_i`` the per-row parameters' Jacobian, ``dp_i/dp0 = p_i/p0``,
    ``dp_i/dgamma_p = sign z_i p_i``) plus the gradient times their second derivatives
    (``sign z_i p_i / p0`` in (p0, gamma_p), ``z_i z_i' p_i`` in (gamma_p, gamma_p)); otherwise it is
    central differences of the gradient (coefficient steps of absolute size).
    """

    def __init__(self, model: "MaximumLikelihoodPurchaseModel", x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                 weights: np.ndarray, Z: np.ndarray) -> None:
        self.model = model
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=float) for v in (x, t_x, T, weights))
        self.Z = np.asarray(Z, dtype=float)
        self.n_rows = len(self.x)
        self.total_weight = float(np.sum(self.w))
        self._n_base = len(model.PARAM_NAMES)
        #: value and gradient at the point of the last chained Hessian (Newton asks for all three)
        self._memo = PointMemo()

    def subsample(self, max_rows: int) -> "CovariateLikelihood":
        """Every k-th row in the given order, each keeping its weight."""
        return CovariateLikelihood(self.model, *systematic_sample([self.x, self.t_x, self.T, self.w, self.Z], max_rows))

    def row_parameters(self, params: np.ndarray) -> list[Any]:
        """Per-row parameters at ``params`` (base then coefficients)."""
        params = np.asarray(params, dtype=float)
        gammas = params[self._n_base:].reshape(len(self.model.COVARIATE_LINKS), self.Z.shape[1])
        return linked_parameters(params[:self._n_base], self.model.PARAM_NAMES, self.model.COVARIATE_LINKS,
                                 gammas, self.Z)

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.asarray(params, dtype=float)
        found = self._memo.value_and_gradient(params)
        if found is not None:
            return found
        theta = self.row_parameters(params)
        row_values, per_row = self.model._row_value_and_gradient(theta, self.x, self.t_x, self.T)
        return float(np.dot(self.w, row_values)), self._chained_gradient(params, theta, per_row)

    def _links(self) -> list[tuple[int, float, slice]]:
        """Per link: the linked parameter's index, the sign and its coefficients' positions in ``params``."""
        k = self.Z.shape[1]
        return [(list(self.model.PARAM_NAMES).index(param), sign, slice(self._n_base + l * k, self._n_base + (l + 1) * k))
                for l, (param, sign) in enumerate(self.model.COVARIATE_LINKS)]

    def _chained_gradient(self, params: np.ndarray, theta: Sequence[Any], per_row: Sequence[np.ndarray]) -> np.ndarray:
        grad = np.array([float(np.dot(self.w, np.broadcast_to(g, self.x.shape))) for g in per_row])
        blocks = []
        for i, sign, _ in self._links():
            scaled = self.w * per_row[i] * theta[i]  # w_i dLL_i/dp_i p_i
            grad[i] = float(np.sum(scaled)) / params[i]
            blocks.append(sign * (self.Z.T @ scaled))
        return np.concatenate([grad] + blocks)

    def hessian(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        theta = self.row_parameters(params)
        found = self.model._row_value_gradient_hessian(theta, self.x, self.t_x, self.T)
        if found is None:
            floor = np.where(np.arange(len(params)) < self._n_base, 1e-8, 1.0)
            return numerical_hessian(lambda p: self.value_and_gradient(p)[1], params, floor)
        row_values, per_row, per_row_hessian = found
        self._memo.remember(params, float(np.dot(self.w, row_values)), self._chained_gradient(params, theta, per_row))
        n_base, n = self._n_base, len(self.x)
        theta = [np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in theta]
        hess = np.zeros((len(params), len(params)))
        for start in range(0, n, _CHAIN_BLOCK_ROWS):
            rows = slice(start, start + _CHAIN_BLOCK_ROWS)
            jac = np.zeros((len(self.x[rows]), n_base, len(params)))  # d p_ij / d params, row by row
            jac[:, np.arange(n_base), np.arange(n_base)] = 1.0
            for i, sign, cols in self._links():
                jac[:, i, i] = theta[i][rows] / params[i]
                jac[:, i, cols] = sign * self.Z[rows] * theta[i][rows, None]
            weighted = per_row_hessian[:, :, rows] * self.w[rows]
            hess += np.einsum("jkn,nja,nkb->ab", weighted, jac, jac, optimize=True)
        for i, sign, cols in self._links():
            scaled = self.w * per_row[i] * theta[i]  # w_i dLL_i/dp_i p_i
            cross = sign * (self.Z.T @ scaled) / params[i]
            hess[i, cols] += cross
            hess[cols, i] += cross
            hess[cols, cols] += (self.Z * scaled[:, None]).T @ self.Z
        return 0.5 * (hess + hess.T)


class RowLikelihood:
    """A weighted log-likelihood over fixed rows ``(x, t_x, T, weight)``, evaluated row by row.

    A subclass implements ``value_and_gradient(params)`` and ``hessian(params)`` (natural
    parameters; Pareto/NBD's are analytic).
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=float) for v in (x, t_x, T, weights))
        self.n_rows = len(self.x)
        self.total_weight = float(np.sum(self.w))

    def subsample(self, max_rows: int) -> "RowLikelihood":
        """Every k-th row in the given order, each keeping its weight."""
        return type(self)(*systematic_sample([self.x, self.t_x, self.T, self.w], max_rows))

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def hessian(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MaximumLikelihoodPurchaseModel:
    """Shared maximum-likelihood fit of a purchase model (scikit-learn estimator contract).

    A subclass sets ``PARAM_NAMES``, ``MODEL_NAME`` (as in messages, e.g. ``"BG/NBD"``),
    ``FIT_ADVICE``, ``TIME_PARAMS`` (the parameters in the time unit, put in an internal
    unit where the largest ``T`` is 1) and implements ``_likelihood(x, t_x, T, w)`` (a
    :class:`~custscore.training.fitting.Likelihood`) and ``_warnings()``; it may add
    diagnostics in ``_extra_diagnostics(x, t_x, T)``. For predictions it implements
    ``p_alive`` and the parts given alive, ``_expected_if_alive(t, x, T, params)`` and
    ``_pmf_if_alive(t, k_max, x, T, params)`` (``params`` scalars, or per-customer arrays
    with covariates), which the shared methods evaluate once per distinct ``(x, T)``
    (:class:`DistinctPairs`, per customer with covariates).

    Parameters: ``penalizer`` (L2 penalty on the internal parameters added to the mean
    negative log-likelihood per customer, as in lifetimes; 0 = plain MLE), ``n_starts``
    (optimiser starts) and ``seed`` (of the jittered starts).

    Fitted attributes: ``params_`` (dict, time parameters in the caller's unit),
    ``log_likelihood_`` (unpenalised, summed over customers), ``variance_matrix_``
    (DataFrame: inverse of minus the Hessian in natural parameters, or ``None`` if not
    positive definite), ``n_customers_`` (sum of weights), ``diagnostics_`` (plain data,
    :func:`~custscore.training.diagnostics.fit_diagnostics`), ``warnings_`` and
    ``covariate_names_`` (the encoded covariate columns, ``()`` without covariates).

    Time-invariant covariates (Fader and Hardie 2007, note 019): a subclass that lists
    ``COVARIATE_LINKS`` (parameter, sign) and implements ``_row_log_likelihood(theta, x,
    t_x, T)`` (per-row log-likelihood, parameters scalars or per-row arrays) can be fitted
    with ``covariates``; each linked parameter becomes ``p_i = p0 exp(sign gamma_p' z_i)``
    (:class:`CovariateLikelihood`) and ``params_`` gains the coefficients
    ``gamma_<param>_<column>`` (:func:`coefficient_name`), with standard errors and
    covariance like the base parameters. ``p0`` is the parameter of a customer with
    ``z = 0`` (the mean customer for standardised covariates).
    """

    PARAM_NAMES: tuple[str, ...] = ()
    KEY = "model"
    MODEL_NAME = "model"
    PARAM_PREFIX = "model_"
    FIT_ADVICE = "try a penalizer of 0.001 or more, or more data"
    TIME_PARAMS: tuple[str, ...] = ()
    #: (parameter, sign of its exponent) scaled by covariates; empty: the model takes none
    COVARIATE_LINKS: tuple[tuple[str, float], ...] = ()
    #: the process each parameter describes (``alpha`` -> ``purchase rate``), for warnings
    PROCESSES: dict[str, str] = {}
    #: identical rows are merged before the fit up to this many rows (None: always)
    MERGE_ROWS_UP_TO: Optional[int] = MERGE_ROWS_UP_TO

    def __init__(self, *, penalizer: float = 0.0, n_starts: int = 5, seed: int = 0) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.seed = seed

    def _likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> Likelihood:
        raise NotImplementedError

    def _warnings(self) -> list[str]:
        raise NotImplementedError

    def _extra_diagnostics(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                           covariates: Optional[np.ndarray] = None) -> dict[str, Any]:
        return {}

    def _row_log_likelihood(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood at parameters ``theta`` (``PARAM_NAMES`` order, scalars or per-row arrays)."""
        raise NotImplementedError

    def _row_gradient(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> list[np.ndarray]:
        """Per-row ``d LL_i / d theta_j``, one array per parameter; central differences unless overridden."""
        return row_gradient_by_differences(self._row_log_likelihood, theta, x, t_x, T)

    def _row_value_and_gradient(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray,
                                T: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """:meth:`_row_log_likelihood` and :meth:`_row_gradient` together (a model may share their work)."""
        return self._row_log_likelihood(theta, x, t_x, T), self._row_gradient(theta, x, t_x, T)

    def _row_value_gradient_hessian(self, theta: Sequence[Any], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                                    ) -> Optional[tuple[np.ndarray, list[np.ndarray], np.ndarray]]:
        """Per-row value, gradient and Hessian (shape ``(k, k) + x.shape``) at ``theta``, or ``None`` (no
        analytic per-row Hessian: :class:`CovariateLikelihood` then differences its gradient)."""
        return None

    def _processes(self) -> dict[str, str]:
        """:attr:`PROCESSES` plus each coefficient with the process of the parameter it scales."""
        out = dict(self.PROCESSES)
        for param, _ in self.COVARIATE_LINKS:
            out.update({coefficient_name(param, c): self.PROCESSES[param] for c in getattr(self, "covariate_names_", ())})
        return out

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None,
            covariates: Any = None) -> "MaximumLikelihoodPurchaseModel":
        """Fit by maximum likelihood; ``weights`` are the number of customers each row stands for.

        Inputs are validated before any casting (:func:`custscore.training.fitting.check_rfm`);
        identical ``(x, t_x, T)`` rows (with their covariates) of small data are collapsed into
        one row with summed weights. ``covariates``: encoded, one row per customer
        (:func:`check_covariates`; see the class docstring). Raises :class:`FitError` if there
        are fewer than :data:`MIN_CUSTOMERS` customers, no repeat purchase at all, or the
        optimiser does not converge.
        """
        check_hyperparameters(
            {"penalizer": self.penalizer, "n_starts": self.n_starts, "seed": self.seed}, ESTIMATOR_CONSTRAINTS
        )
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        w = check_weights(weights, len(x))
        name = self.MODEL_NAME
        if total_weight(w) < MIN_CUSTOMERS:
            raise FitError(f"cannot fit {name}: need at least {MIN_CUSTOMERS} customers, got {total_weight(w)}")
        if not np.any(x > 0):
            raise FitError(f"cannot fit {name}: no customer has a repeat purchase")
        Z, columns = (None, ()) if covariates is None else check_covariates(covariates, len(x))
        if Z is not None and not self.COVARIATE_LINKS:
            raise CustscoreError(f"covariates: {name} does not take covariates (BG/NBD and Pareto/NBD do)")

        if self.MERGE_ROWS_UP_TO is None or len(x) <= self.MERGE_ROWS_UP_TO:
            merged, w = unique_rows([x, t_x, t_cal] + ([] if Z is None else list(Z.T)), w)
            x, t_x, t_cal = merged[:3]
            Z = None if Z is None else np.column_stack(merged[3:])
        likelihood = self._likelihood(x, t_x, t_cal, w) if Z is None else CovariateLikelihood(self, x, t_x, t_cal, w, Z)
        names = list(self.PARAM_NAMES) + [coefficient_name(p, c) for p, _ in self.COVARIATE_LINKS for c in columns]
        # Internal time unit: the largest T becomes 1 (start at all-ones, unit-free penalty);
        # coefficients are free reals starting at 0.
        free = np.arange(len(names)) >= len(self.PARAM_NAMES)
        scales = np.array([float(t_cal.max()) if p in self.TIME_PARAMS else 1.0 for p in names])
        settings = FitSettings(penalizer=float(self.penalizer), n_starts=self.n_starts, seed=self.seed,
                               advice=self.FIT_ADVICE)
        params = fit_log_params(likelihood, names, scales, settings, name, free=free)

        self.covariate_names_ = columns
        self.params_ = {p: float(v) for p, v in zip(names, params)}
        self.log_likelihood_ = float(likelihood.value_and_gradient(params)[0])
        hessian = likelihood.hessian(params)
        inv = inverse_or_none(-hessian)
        self.variance_matrix_ = None if inv is None else pd.DataFrame(inv, index=names, columns=names)
        self.n_customers_ = total_weight(w)
        self.diagnostics_ = fit_diagnostics(names, params, scales, hessian, likelihood.total_weight, inv, free)
        self.diagnostics_.update(self._extra_diagnostics(x, t_x, t_cal, Z))
        self.warnings_ = tuple(self._warnings())
        return self

    def _params(self, covariates: Any = None, n: Optional[int] = None) -> tuple[Any, ...]:
        """The parameters in ``PARAM_NAMES`` order: floats, or per-customer arrays ``(n,)`` with covariates.

        A model fitted with covariates needs them (``n`` rows, its ``covariate_names_``); one
        fitted without refuses them: both are a :class:`CustscoreError`.
        """
        if not hasattr(self, "params_"):
            raise FitError(f"{type(self).__name__} is not fitted yet: call fit first")
        base = tuple(self.params_[p] for p in self.PARAM_NAMES)
        columns = getattr(self, "covariate_names_", ())
        if not columns:
            if covariates is not None:
                raise CustscoreError(f"covariates: this {self.MODEL_NAME} model was trained without covariates")
            return base
        if covariates is None:
            raise CustscoreError(f"covariates: this {self.MODEL_NAME} model was trained with covariates "
                                 f"({', '.join(columns)}); pass them for every customer")
        Z, _ = check_covariates(covariates, len(covariates) if n is None else n, columns)
        gammas = np.array([[self.params_[coefficient_name(p, c)] for c in columns] for p, _ in self.COVARIATE_LINKS])
        return tuple(linked_parameters(base, self.PARAM_NAMES, self.COVARIATE_LINKS, gammas, Z))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """E[repeat purchases in ``(T, T + t]`` | alive at T, x, T]: depends on ``(x, T)`` and ``params`` only.

        ``t`` (model unit) is a scalar or broadcasts against ``x``; ``params`` in
        ``PARAM_NAMES`` order, scalars or per-row arrays (covariates). Conditional expected
        purchases are P(alive) times this (:meth:`expected_purchases`).
        """
        raise NotImplementedError

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any, covariates: Any = None) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]``: ``P(alive) E[X(t) | alive at T]``.

        The second factor (:meth:`_expected_if_alive`, each model's closed form) depends on
        ``(x, T)`` only, so for a scalar ``t`` (and no covariates) it is evaluated once per
        distinct pair. ``t`` in the model's unit, a scalar or broadcasting against the
        customers. Shape ``(n_customers,)``.
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        params = self._params(covariates, len(x))
        return (on_pairs(self._expected_if_alive, check_horizon(t), x, t_cal, params)
                * self.p_alive(x, t_x, t_cal, covariates=covariates))

    def discounted_expected_purchases(self, step_ends: Any, discount_factors: Any, frequency: Any, recency: Any,
                                      T: Any, covariates: Any = None) -> np.ndarray:
        """``sum_k [E(end_k) - E(end_{k-1})] * discount_factors[k]`` per customer, E = :meth:`expected_purchases`.

        ``step_ends`` (increasing, model unit) and ``discount_factors`` have one value per
        step. E is P(alive) times a factor of ``(x, T)`` only, so the discounted sum of that
        factor's increments is taken once per distinct pair (steps on all cores) and
        multiplied by P(alive), evaluated once. Shape ``(n_customers,)``.
        """
        ends, factors = check_steps(step_ends, discount_factors)
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        pairs = DistinctPairs(x, t_cal, self._params(covariates, len(x)))
        cumulative = map_in_threads(lambda end: self._expected_if_alive(np.asarray(end), pairs.x, pairs.T, pairs.params),
                                    ends, work=pairs.n * len(ends))
        total, previous = np.zeros(pairs.n), np.zeros(pairs.n)
        for value, factor in zip(cumulative, factors):
            total += (value - previous) * factor
            previous = value
        return pairs.expand(total) * self.p_alive(x, t_x, t_cal, covariates=covariates)

    def _pmf_if_alive(self, t: float, k_max: int, x: np.ndarray, T: np.ndarray, params: Sequence[Any]) -> np.ndarray:
        """P(k purchases in ``(T, T + t]`` | alive at T), k = 0..k_max, shape ``(n, k_max + 1)``.

        Depends on ``(x, T)`` and ``params`` (scalars or per-row arrays) only (the callers
        evaluate it once per distinct pair).
        """
        raise NotImplementedError

    def _pmf_if_alive_blocks(self, t: float, k_max: int, x: np.ndarray, T: np.ndarray,
                             params: Sequence[Any]) -> np.ndarray:
        """:meth:`_pmf_if_alive` in blocks of :data:`_PMF_BLOCK_ROWS` rows (bounded temporaries)."""
        out = np.empty((len(x), int(k_max) + 1))
        for start in range(0, len(x), _PMF_BLOCK_ROWS):
            rows = slice(start, start + _PMF_BLOCK_ROWS)
            out[rows] = self._pmf_if_alive(t, int(k_max), x[rows], T[rows], params_at(params, rows))
        return out

    def purchase_pmf(self, t: Any, frequency: Any, recency: Any, T: Any, k_max: int,
                     covariates: Any = None) -> np.ndarray:
        """P(X = k | x, t_x, T) of the repeat purchases X in ``(T, T + t]``, k = 0..k_max.

        ``(1 - P(alive)) [k = 0] + P(alive) P(X = k | alive)``; shape ``(n_customers, k_max + 1)``
        (rows sum to less than 1 by the mass beyond ``k_max``). ``t`` in the model's unit.
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        t = float(check_horizon(t))
        pairs = DistinctPairs(x, t_cal, self._params(covariates, len(x)))
        if_alive = self._pmf_if_alive_blocks(t, int(k_max), pairs.x, pairs.T, pairs.params)
        alive = self.p_alive(x, t_x, t_cal, covariates=covariates)
        out = alive[:, None] * pairs.expand(if_alive)
        out[:, 0] += 1.0 - alive
        return out

    def purchase_quantiles(self, t: Any, frequency: Any, recency: Any, T: Any,
                           levels: tuple[float, ...] = (0.1, 0.9), covariates: Any = None) -> list[np.ndarray]:
        """For each level q, the smallest k with P(X <= k | x, t_x, T) >= q (X as :meth:`purchase_pmf`).

        One array of shape ``(n_customers,)`` per level. Counts are discrete, so
        ``[q10, q90]`` holds at least 80 % of the predictive mass, usually more.

        With ``C_k`` the cumulative P(X <= k | alive), one row per distinct ``(x, T)`` pair,
        the customer's cumulative is ``(1 - P(alive)) + P(alive) C_k``, so each quantile
        is the number of k whose cumulative stays below q. A pair's ``C`` runs to k = 15
        first, then to 4 k_max + 3 until it reaches the top level.
        """
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        t = float(check_horizon(t))
        out = [np.zeros(len(x)) for _ in levels]
        if len(x) == 0:
            return out
        alive = self.p_alive(x, t_x, t_cal, covariates=covariates)
        pairs = DistinctPairs(x, t_cal, self._params(covariates, len(x)))
        of_pair = pairs.inverse()
        open_pairs, k_max, top = np.arange(pairs.n), _FIRST_K_MAX, max(levels)
        while len(open_pairs):
            cdf = np.cumsum(self._pmf_if_alive_blocks(t, k_max, pairs.x[open_pairs], pairs.T[open_pairs],
                                                      params_at(pairs.params, open_pairs)), axis=1)
            done = cdf[:, -1] >= top - 1e-12
            # pairs whose cumulative reaches the top here, by position in cdf (-1: not here)
            position = np.full(pairs.n, -1)
            position[open_pairs[done]] = np.flatnonzero(done)
            rows = np.flatnonzero(position[of_pair] >= 0)
            for start in range(0, len(rows), _PMF_BLOCK_ROWS):
                block = rows[start:start + _PMF_BLOCK_ROWS]
                a = alive[block, None]
                customer_cdf = (1.0 - a) + a * cdf[position[of_pair[block]]]
                for q, level in zip(out, levels):
                    q[block] = np.count_nonzero(customer_cdf < level - 1e-12, axis=1)
            open_pairs, k_max = open_pairs[~done], 4 * k_max + 3
        return out
