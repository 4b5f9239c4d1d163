"""Shared numerics for the probabilistic models: input checks, multi-start fitting, Hessians.

Everything here is model-agnostic. The models (:mod:`custscore.training.bgnbd`,
:mod:`custscore.training.gamma_gamma`) supply a negative log-likelihood with its analytic
gradient in log-parameter space; :func:`minimize_negative_log_likelihood` does the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

from custscore.errors import CustscoreError, FitError
from custscore.threads import all_blocks, for_each_block, one_blas_thread

#: A fit is accepted only if the largest absolute gradient component of the objective
#: (in log-parameter space) is below this. The models minimise the *mean* negative
#: log-likelihood per customer, so the tolerance does not depend on the data size; at
#: 1e-5 the log-parameters are within about 1e-5 / (smallest Hessian eigenvalue) of the
#: optimum, well inside one standard error for any data set a model can be fitted on.
GRADIENT_TOLERANCE = 1e-5
#: Two accepted starts whose objectives agree this closely (relative) found the same optimum.
AGREEMENT_RTOL = 1e-9

#: Standard deviation of the jitter added to the log-parameters for the extra starts.
START_JITTER_SD = 0.5

_LBFGSB_OPTIONS = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10, "maxls": 50}

#: The optimiser's box: every log-parameter (in the model's internal unit) stays in
#: ``[-LOG_PARAM_BOUND, LOG_PARAM_BOUND]``, i.e. internal parameters in ``[1e-6, 1e6]``.
#: Without it a parameter the data cannot pin down drifts until ``exp`` underflows to 0
#: (a ZeroDivisionError on constant spend); a fit that ends on the box is reported by
#: :mod:`custscore.training.diagnostics` instead.
LOG_PARAM_BOUND = float(np.log(1e6))


# --------------------------------------------------------------------------- constraints


#: Hyper-parameter constraints shared by the estimators, declared once:
#: name -> (predicate, human description of the allowed values).
ESTIMATOR_CONSTRAINTS: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "penalizer": (
        lambda v: _is_real(v) and np.isfinite(v) and v >= 0,
        "a finite number >= 0",
    ),
    "n_starts": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "seed": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
}


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_hyperparameters(values: Mapping[str, Any], constraints: Mapping[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Check ``values`` against a constraints table; raise :class:`CustscoreError` naming the first bad one.

    >>> check_hyperparameters({"penalizer": -1.0}, ESTIMATOR_CONSTRAINTS)
    Traceback (most recent call last):
    ...
    custscore.errors.CustscoreError: penalizer: must be a finite number >= 0, got -1.0
    """
    for name, value in values.items():
        predicate, description = constraints[name]
        if not predicate(value):
            raise CustscoreError(f"{name}: must be {description}, got {value!r}")


# --------------------------------------------------------------------------- input checks


def as_numeric_vector(values: Any, name: str, check_finite: bool = True) -> np.ndarray:
    """Return ``values`` as a 1-D float array, checking type and (unless told not to) finiteness.

    Booleans, strings and objects that are not numbers are rejected rather than coerced.
    A scalar becomes an array of length 1.
    """
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise CustscoreError(f"{name}: must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O" and arr.size and all(_is_real(v) for v in arr):
            arr = arr.astype(float)
        else:
            raise CustscoreError(f"{name}: must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(float, copy=False)
    if not check_finite:
        return arr
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CustscoreError(f"{name}: must be finite; position {i} has {float(arr[i])!r}")
    return arr


def whole_at_least(x: np.ndarray, minimum: float) -> np.ndarray:
    """Per value: finite, whole and >= ``minimum`` (NaN and inf give False)."""
    with np.errstate(invalid="ignore"):
        return (x >= minimum) & (x < np.inf) & (x == np.floor(x))


def _first_bad(mask: np.ndarray) -> Optional[int]:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def check_frequency(frequency: Any, name: str = "frequency", minimum: int = 0) -> np.ndarray:
    """Check a repeat-purchase count: whole numbers ``>= minimum``, checked before casting.

    >>> check_frequency([0, 2.7])
    Traceback (most recent call last):
    ...
    custscore.errors.CustscoreError: frequency: must be a whole number >= 0; position 1 has 2.7
    """
    x = as_numeric_vector(frequency, name, check_finite=False)
    if all_blocks(lambda rows: whole_at_least(x[rows], minimum), len(x)):
        return x
    x = as_numeric_vector(frequency, name)  # names the first non-finite value
    i = _first_bad((x != np.floor(x)) | (x < minimum))
    if i is not None:
        raise CustscoreError(f"{name}: must be a whole number >= {minimum}; position {i} has {float(x[i])!r}")
    return x


def check_same_length(**arrays: np.ndarray) -> int:
    """Raise :class:`CustscoreError` unless all arrays have the same length; return it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise CustscoreError(f"inputs must have equal lengths, got {detail}")
    return next(iter(lengths.values()))


def check_rfm(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate BG/NBD inputs (any one time unit) and return them as float arrays.

    Rules: frequency whole >= 0; T >= 0 (0 for a customer first seen on the cutoff day,
    whose likelihood term is 1); 0 <= recency <= T; recency == 0 when frequency == 0;
    all finite; equal lengths. Each error names the argument, the position and the value.
    """
    x = as_numeric_vector(frequency, "frequency", check_finite=False)
    t_x = as_numeric_vector(recency, "recency", check_finite=False)
    t_cal = as_numeric_vector(T, "T", check_finite=False)
    check_same_length(frequency=x, recency=t_x, T=t_cal)

    def holds(rows: slice) -> np.ndarray:
        xb, tb, Tb = x[rows], t_x[rows], t_cal[rows]
        with np.errstate(invalid="ignore"):  # NaN compares False: the rule fails, the checks below name it
            return whole_at_least(xb, 0) & (tb >= 0) & (tb <= Tb) & (Tb < np.inf) & ((xb > 0) | (tb == 0))

    if all_blocks(holds, len(x)):
        return x, t_x, t_cal
    # Some rule fails: check one rule after the other, so the error names the first one.
    x = check_frequency(frequency, "frequency")
    t_x = as_numeric_vector(recency, "recency")
    t_cal = as_numeric_vector(T, "T")
    i = _first_bad(t_cal < 0)
    if i is not None:
        raise CustscoreError(f"T: must be >= 0; position {i} has {float(t_cal[i])!r}")
    i = _first_bad(t_x < 0)
    if i is not None:
        raise CustscoreError(f"recency: must be >= 0; position {i} has {float(t_x[i])!r}")
    i = _first_bad(t_x > t_cal)
    if i is not None:
        raise CustscoreError(f"recency: must be <= T; position {i} has recency={float(t_x[i])!r} > T={float(t_cal[i])!r}")
    i = _first_bad((x == 0) & (t_x != 0))
    if i is not None:
        raise CustscoreError(f"recency: must be 0 when frequency is 0; position {i} has recency={float(t_x[i])!r}")
    return x, t_x, t_cal


def check_weights(weights: Any, n: int) -> np.ndarray:
    """Return weights (customers each row stands for) as floats; ``None`` means 1 each."""
    if weights is None:
        return np.ones(n)
    w = as_numeric_vector(weights, "weights")
    if len(w) != n:
        raise CustscoreError(f"weights: must have one value per customer ({n}), got {len(w)}")
    i = _first_bad(w <= 0)
    if i is not None:
        raise CustscoreError(f"weights: must be > 0; position {i} has {float(w[i])!r}")
    return w


def unique_inverse(columns: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``columns`` (sorted lexicographically) and each row's index into them.

    Each column is ranked (:func:`sorted_codes`), the ranks are combined into one
    int64 key and only that key is sorted (or, when there are at most twice as many
    possible keys as rows, counted): ~10x faster than ``np.unique(axis=0)`` on stacked
    floats, same order.

    >>> cols, inverse = unique_inverse([np.array([2.0, 1.0, 2.0]), np.array([5.0, 3.0, 5.0])])
    >>> [c.tolist() for c in cols], inverse.tolist()
    ([[1.0, 2.0], [3.0, 5.0]], [1, 0, 1])
    """
    return unique_inverse_of_codes([sorted_codes(np.asarray(column, dtype=float)) for column in columns])


def unique_inverse_of_codes(coded: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`unique_inverse` of columns given as ``(codes, sorted distinct values)`` (:func:`sorted_codes`)."""
    ranks, values = [c for c, _ in coded], [v for _, v in coded]
    radix = 1
    for uniques in values:
        radix *= max(len(uniques), 1)
    if radix >= 2**62:  # too many distinct values to combine: fall back to the row sort
        stacked = np.column_stack([v[c] for c, v in coded])
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        return [uniq[:, j].copy() for j in range(uniq.shape[1])], inverse.ravel()
    key = np.zeros(len(ranks[0]) if ranks else 0, dtype=np.int64)
    for codes, uniques in zip(ranks, values):
        key = key * len(uniques) + codes
    if radix <= max(2 * len(key), 1 << 16):
        # Few possible keys: mark the ones present and number them in order, in O(n).
        present = np.bincount(key, minlength=radix) > 0
        unique_keys, inverse = np.flatnonzero(present), (np.cumsum(present) - 1)[key]
    else:
        unique_keys, inverse = np.unique(key, return_inverse=True)
    out, rest = [], unique_keys
    for uniques in reversed(values):
        out.append(uniques[rest % len(uniques)])
        rest = rest // len(uniques)
    return out[::-1], inverse


def whole_number_codes(values: np.ndarray, max_value: int = 10_000_000) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(codes, sorted distinct values)`` of whole numbers in ``[0, max_value]`` in O(n), else ``None``.

    A counting pass instead of a sort or hash: day counts and purchase counts take this
    path; anything else (fractional weeks, huge values) returns ``None``.

    >>> codes, values = whole_number_codes(np.array([5.0, 2.0, 5.0, 0.0]))
    >>> codes.tolist(), values.tolist()
    ([2, 1, 2, 0], [0.0, 2.0, 5.0])
    """
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > max_value:
        return None
    ints = values.astype(np.int64)
    if not np.array_equal(ints, values):
        return None
    present = np.bincount(ints, minlength=int(high) + 1) > 0
    code_of = np.cumsum(present) - 1
    return code_of[ints], np.flatnonzero(present).astype(float)


#: Up to this many values, :func:`sorted_codes` sorts (``np.unique``): cheapest for a few rows.
_SORT_CODES_UP_TO = 1_000


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, sorted distinct values)`` of a 1-D array: a sort for a few values, counting
    for many whole numbers, else a hash."""
    if values.size <= _SORT_CODES_UP_TO:
        uniques, codes = np.unique(values, return_inverse=True)
        return codes.reshape(-1), uniques.astype(float, copy=False)
    fast = whole_number_codes(values)
    if fast is not None:
        return fast
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=float)


def value_index(values: np.ndarray, max_value: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, candidate values)`` with ``values == candidates[codes]``, candidates sorted.

    Many whole numbers in ``[0, max_value]`` (frequencies, ages in days) index themselves:
    candidates ``0, 1, ..., max`` (not all present), one cast in row blocks on all cores
    instead of :func:`sorted_codes`' count and renumbering. Anything else takes
    :func:`sorted_codes`.

    >>> codes, candidates = value_index(np.array([3.0, 0.0, 3.0] * 400))
    >>> codes[:3].tolist(), candidates.tolist()
    ([3, 0, 3], [0.0, 1.0, 2.0, 3.0])
    """
    if values.size > _SORT_CODES_UP_TO and all_blocks(lambda rows: whole_at_least(values[rows], 0), len(values)):
        high = float(values.max())
        if high <= max_value:
            ints = np.empty(len(values), dtype=np.int64)

            def cast(rows: slice) -> None:
                ints[rows] = values[rows]

            for_each_block(cast, len(values))
            return ints, np.arange(int(high) + 1, dtype=float)
    return sorted_codes(values)


class PairIndex:
    """Distinct ``(a, b)`` pairs of two indexed columns (:func:`value_index`), found in row blocks.

    ``a``, ``b``: the distinct pairs in sorted order; :meth:`of` gives rows' positions
    among them. With few possible pairs (at most twice the rows, or 65,536) the pairs are
    marked in a presence table block by block on all cores, and each block looks its rows
    up again when it needs them; otherwise :func:`unique_inverse_of_codes` numbers all rows
    once.
    """

    def __init__(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
        self._a, self._b, self._n_b = a[0], b[0], max(len(b[1]), 1)
        n, radix = len(self._a), max(len(a[1]), 1) * max(len(b[1]), 1)
        self._inverse: Optional[np.ndarray] = None
        if radix > max(2 * n, 1 << 16):
            (self.a, self.b), self._inverse = unique_inverse_of_codes([a, b])
            return
        present = np.zeros(radix, dtype=bool)

        def mark(rows: slice) -> None:  # threads only ever set True: no update can be lost
            present[self._key(rows)] = True

        for_each_block(mark, n)
        keys = np.flatnonzero(present)
        self._rank = np.cumsum(present) - 1
        self.a, self.b = a[1][keys // self._n_b], b[1][keys % self._n_b]

    def _key(self, rows: slice) -> np.ndarray:
        return self._a[rows] * self._n_b + self._b[rows]

    def of(self, rows: slice) -> np.ndarray:
        """Positions among the distinct pairs of the rows ``rows``."""
        return self._inverse[rows] if self._inverse is not None else self._rank[self._key(rows)]


def unique_rows(columns: Sequence[np.ndarray], weights: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows of ``columns``, summing ``weights``: the counts used for fitting.

    >>> cols, w = unique_rows([np.array([1.0, 1.0, 2.0]), np.array([3.0, 3.0, 3.0])], np.ones(3))
    >>> [c.tolist() for c in cols], w.tolist()
    ([[1.0, 2.0], [3.0, 3.0]], [2.0, 1.0])
    """
    unique, inverse = unique_inverse(columns)
    return unique, np.bincount(inverse, weights=weights, minlength=len(unique[0]))


def total_weight(weights: np.ndarray) -> int | float:
    """Sum of weights as ``int`` when every weight is whole, else as ``float``."""
    total = float(weights.sum())
    return int(round(total)) if np.all(weights == np.floor(weights)) else total


# --------------------------------------------------------------------------- optimisation


def minimize_negative_log_likelihood(
    nll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0_log: np.ndarray,
    param_names: Sequence[str],
    n_starts: int = 5,
    seed: int = 0,
    *,
    model_name: str = "model",
    advice: str = "try a penalizer of 0.001 or more, or more data",
    stop_when_agreeing: bool = True,
    bound: Optional[float] = None,
) -> tuple[np.ndarray, OptimizeResult]:
    """Minimise an objective over log-parameters with L-BFGS-B and an analytic gradient.

    ``nll_and_grad(log_params)`` returns the objective (a negative log-likelihood, ideally
    per customer so its scale does not grow with the data) and its gradient with respect
    to ``log_params``. The optimiser is started from ``x0_log`` and from ``n_starts - 1``
    further points ``x0_log + N(0, START_JITTER_SD**2)`` drawn from
    ``numpy.random.default_rng(seed)``. A run is accepted only if scipy reports success,
    the objective is finite and ``max |gradient| <= GRADIENT_TOLERANCE``; the accepted run
    with the lowest objective wins. With ``stop_when_agreeing`` (the default), ``n_starts``
    is a maximum: once two accepted runs agree on the objective to ``AGREEMENT_RTOL`` the
    search stops (usually after two starts; the BG/NBD and Gamma-Gamma likelihoods have
    one optimum in practice, so later starts only repeat it; the first of the two is kept).
    Without it every start runs.

    With ``bound``, every log-parameter is kept in ``[-bound, bound]`` and the gradient
    test ignores components held at the box by a gradient pointing out of it (the
    projected gradient).

    Returns ``(log_params, result)`` (the scipy ``OptimizeResult`` of the best run).
    Raises :class:`FitError` with advice if no start converges.

    >>> import numpy as np
    >>> f = lambda z: (float(np.sum((z - 1.0) ** 2)), 2 * (z - 1.0))
    >>> x, res = minimize_negative_log_likelihood(f, np.zeros(2), ["u", "v"], n_starts=2)
    >>> np.round(x, 6).tolist()
    [1.0, 1.0]
    """
    x0_log = np.asarray(x0_log, dtype=float)
    if x0_log.shape != (len(param_names),):
        raise ValueError(f"x0_log has shape {x0_log.shape}, expected ({len(param_names)},)")
    rng = np.random.default_rng(seed)
    starts = [x0_log] + [x0_log + rng.normal(0.0, START_JITTER_SD, size=x0_log.shape) for _ in range(n_starts - 1)]
    box = None if bound is None else [(-bound, bound)] * len(param_names)
    if bound is not None:
        starts = [np.clip(start, -bound, bound) for start in starts]

    def safe(z: np.ndarray) -> tuple[float, np.ndarray]:
        # Keep the optimiser away from overflow: an infinite or NaN objective becomes a
        # large finite value with a zero gradient, so the line search backs off.
        with np.errstate(all="ignore"):
            value, grad = nll_and_grad(z)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e100, np.zeros_like(z)
        return float(value), np.asarray(grad, dtype=float)

    best: Optional[OptimizeResult] = None
    best_grad = np.inf
    closest: Optional[OptimizeResult] = None
    for start in starts:
        res = minimize(safe, start, jac=True, method="L-BFGS-B", bounds=box, options=_LBFGSB_OPTIONS)
        value, grad = safe(res.x)
        grad_max = float(np.max(np.abs(projected_gradient(res.x, grad, bound))))
        res.grad_max_abs = grad_max
        if closest is None or grad_max < closest.grad_max_abs:
            closest = res
        accepted = bool(res.success) and value < 1e100 and np.isfinite(value) and grad_max <= GRADIENT_TOLERANCE
        if (stop_when_agreeing and accepted and best is not None
                and abs(value - best.fun) <= AGREEMENT_RTOL * max(1.0, abs(value))):
            # Two starts reached the same optimum: further starts would only repeat it. The
            # first is kept: the later one is lower by float noise at most, and along a
            # direction the data do not pin down (the coefficient of a constant covariate,
            # gradient exactly 0) it still sits at its random start.
            break
        if accepted and (best is None or value < best.fun):
            best = res
            best_grad = grad_max
    if best is None:
        assert closest is not None
        error = FitError(
            f"{model_name} did not converge from {len(starts)} starts "
            f"(best |grad| = {closest.grad_max_abs:.2g}, tolerance {GRADIENT_TOLERANCE:g}); {advice}"
        )
        error.closest_log_params = np.asarray(closest.x, dtype=float)  # where the search ended
        raise error
    best.grad_max_abs = best_grad
    return np.asarray(best.x, dtype=float), best


def projected_gradient(z: np.ndarray, grad: np.ndarray, bound: Optional[float]) -> np.ndarray:
    """``grad`` with the components zeroed that the box ``[-bound, bound]`` holds at ``z``.

    >>> projected_gradient(np.array([-2.0, 0.0]), np.array([3.0, 1e-3]), 2.0).tolist()
    [0.0, 0.001]
    """
    if bound is None:
        return grad
    held = ((z <= -bound) & (grad > 0)) | ((z >= bound) & (grad < 0))
    return np.where(held, 0.0, grad)


def numerical_hessian(grad_fn: Callable[[np.ndarray], np.ndarray], theta: np.ndarray,
                      floor: Any = 1e-8) -> np.ndarray:
    """Hessian by central differences of an analytic gradient, symmetrised.

    The step for parameter ``j`` is ``eps**(1/3) * max(|theta_j|, floor_j)`` (relative, so
    positive parameters stay positive; ``floor`` of order 1 for coefficients that may be 0).
    Shape ``(k, k)`` for ``theta`` of shape ``(k,)``.

    >>> import numpy as np
    >>> numerical_hessian(lambda z: np.array([2 * z[0] + z[1], z[0] + 6 * z[1]]), np.array([1.0, 2.0])).round(6).tolist()
    [[2.0, 1.0], [1.0, 6.0]]
    """
    theta = np.asarray(theta, dtype=float)
    k = theta.size
    steps = np.finfo(float).eps ** (1.0 / 3.0) * np.maximum(np.abs(theta), floor)
    hess = np.empty((k, k))
    for j in range(k):
        up = theta.copy()
        down = theta.copy()
        up[j] += steps[j]
        down[j] -= steps[j]
        hess[:, j] = (np.asarray(grad_fn(up)) - np.asarray(grad_fn(down))) / (up[j] - down[j])
    return 0.5 * (hess + hess.T)


def inverse_or_none(matrix: np.ndarray) -> Optional[np.ndarray]:
    """Inverse of a Hessian of a negative log-likelihood, or ``None`` if it is not positive definite."""
    try:
        np.linalg.cholesky(matrix)
        inv = np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(inv)):
        return None
    return inv


def systematic_sample(rows: Sequence[np.ndarray], max_rows: int) -> list[np.ndarray]:
    """Every k-th row of aligned columns, k the smallest step leaving at most ``max_rows``.

    >>> [c.tolist() for c in systematic_sample([np.arange(5), np.arange(5) * 10], 2)]
    [[0, 3], [0, 30]]
    """
    step = max(1, -(-len(rows[0]) // max_rows))
    return [column[::step] for column in rows]


class Likelihood(Protocol):
    """A weighted log-likelihood over fixed data, in natural parameters.

    ``value_and_gradient(params)`` returns ``(sum_i w_i LL_i, gradient)``; ``hessian(params)``
    the matrix of second derivatives of that sum; ``subsample(max_rows)`` the same
    likelihood on at most ``max_rows`` of its rows (a systematic sample keeping each row's
    weight); ``total_weight`` is the number of customers the rows stand for.
    """

    total_weight: float
    n_rows: int

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]: ...

    def hessian(self, params: np.ndarray) -> np.ndarray: ...

    def subsample(self, max_rows: int) -> "Likelihood": ...


class PointMemo:
    """A likelihood's value, gradient and (optionally) Hessian at the one point last evaluated with its
    Hessian: Newton's steps ask for all three at a point, one pass computes them together.

    >>> memo = PointMemo()
    >>> memo.remember(np.array([1.0, 2.0]), -3.0, np.array([0.5, 0.25]))
    >>> memo.value_and_gradient(np.array([1.0, 2.0])), memo.value_and_gradient(np.array([1.0, 2.5]))
    ((-3.0, array([0.5 , 0.25])), None)
    """

    def __init__(self) -> None:
        self._point: Optional[bytes] = None
        self._value, self._gradient, self._hessian = 0.0, np.zeros(0), None

    def remember(self, params: np.ndarray, value: float, gradient: np.ndarray,
                 hessian: Optional[np.ndarray] = None) -> None:
        """Keep ``value``, ``gradient`` (and ``hessian``) at ``params``, forgetting the previous point."""
        self._point = np.asarray(params, dtype=float).tobytes()
        self._value, self._gradient, self._hessian = float(value), gradient, hessian

    def _at(self, params: np.ndarray) -> bool:
        return self._point is not None and self._point == np.asarray(params, dtype=float).tobytes()

    def value_and_gradient(self, params: np.ndarray) -> Optional[tuple[float, np.ndarray]]:
        """``(value, a copy of the gradient)`` when ``params`` is the remembered point, else None."""
        return (self._value, self._gradient.copy()) if self._at(params) else None

    def hessian(self, params: np.ndarray) -> Optional[np.ndarray]:
        """A copy of the Hessian when ``params`` is the remembered point and one was kept, else None."""
        return self._hessian.copy() if self._at(params) and self._hessian is not None else None


@dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_log_params` searches: penalty, starts and the large-data shortcut.

    (The ``scales`` argument of :func:`fit_log_params` puts each parameter in an internal
    unit, e.g. alpha divided by the largest T, where all-ones is a sensible start and the
    penalty does not depend on the caller's unit.) From ``subsample_from`` rows, the
    multi-start search runs on a
    systematic sample of ``subsample_rows`` rows and the full data is only used for
    Newton steps from the sample's optimum (a handful of evaluations instead of hundreds).
    """

    penalizer: float = 0.0
    n_starts: int = 5
    seed: int = 0
    subsample_from: int = 50_000
    subsample_rows: int = 20_000
    max_newton_steps: int = 30
    #: what a fit that does not converge suggests (the option that penalises THIS model)
    advice: str = "try a penalizer of 0.001 or more, or more data"


class _LogObjective:
    """Mean penalised negative log-likelihood over log-parameters in internal units.

    Parameters flagged ``free`` (covariate coefficients, any real number) are optimised
    as they are (``param = z``, penalty ``z**2``) instead of through ``scale * exp(z)``.
    """

    def __init__(self, likelihood: Likelihood, scales: np.ndarray, penalizer: float,
                 free: Optional[np.ndarray] = None) -> None:
        self.likelihood, self.scales, self.penalizer = likelihood, scales, penalizer
        self.free = np.zeros(len(scales), dtype=bool) if free is None else np.asarray(free, dtype=bool)
        self.n_total = float(likelihood.total_weight)

    def params(self, z: np.ndarray) -> np.ndarray:
        return np.where(self.free, z, self.scales * np.exp(np.where(self.free, 0.0, z)))

    def _internal(self, z: np.ndarray) -> np.ndarray:
        """The penalised values: ``exp(z)`` (internal unit) or the free parameter itself."""
        return np.where(self.free, z, np.exp(np.where(self.free, 0.0, z)))

    def value_and_gradient(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        params, internal = self.params(z), self._internal(z)
        ll, grad = self.likelihood.value_and_gradient(params)
        value = -ll / self.n_total + self.penalizer * float(np.sum(internal**2))
        chain = np.where(self.free, 1.0, params)  # d param / d z
        penalty = np.where(self.free, 2.0 * self.penalizer * z, 2.0 * self.penalizer * internal**2)
        return value, -grad * chain / self.n_total + penalty

    def value_gradient_hessian(self, z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Value, gradient and Hessian in ``z``; Hessian ``P (-H/n) P + diag(gradient + 2 pen internal**2)``.

        ``P = diag(params)`` (1 for free parameters, whose diagonal term is ``2 pen``). The
        likelihood's Hessian is asked for first: likelihoods that remember their last
        evaluation then give the value and gradient for free.
        """
        params, internal = self.params(z), self._internal(z)
        chain = np.where(self.free, 1.0, params)
        hess = -self.likelihood.hessian(params) * np.outer(chain, chain) / self.n_total
        value, gradient = self.value_and_gradient(z)
        diagonal = np.where(self.free, 2.0 * self.penalizer, gradient + 2.0 * self.penalizer * internal**2)
        return value, gradient, hess + np.diag(diagonal)


def newton_refine(objective: _LogObjective, z0: np.ndarray, max_steps: int) -> Optional[np.ndarray]:
    """Newton's method with backtracking from ``z0``; the optimum, or ``None`` if it fails.

    It fails (and the caller falls back to L-BFGS) when the Hessian is not positive
    definite along the way, a step cannot decrease the objective, or ``max_steps`` pass
    before ``max |gradient| <= GRADIENT_TOLERANCE / 100``, or when ``z0`` is on the box
    (:data:`LOG_PARAM_BOUND`) or a step would leave it: Newton's method knows no bounds.
    """
    z = np.asarray(z0, dtype=float)
    if np.any(np.abs(z) >= LOG_PARAM_BOUND):
        return None
    with np.errstate(all="ignore"):
        value, grad, hess = objective.value_gradient_hessian(z)
        for _ in range(max_steps):
            if not np.isfinite(value) or not np.all(np.isfinite(grad)) or not np.all(np.isfinite(hess)):
                return None
            if np.max(np.abs(grad)) <= GRADIENT_TOLERANCE / 100:
                return z
            try:
                chol = np.linalg.cholesky(hess)
            except np.linalg.LinAlgError:
                return None
            step = -np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
            for _ in range(30):  # halve until the objective does not increase
                new_value, new_grad, new_hess = objective.value_gradient_hessian(z + step)
                if np.isfinite(new_value) and new_value <= value + 1e-12 * abs(value):
                    break
                step = step / 2
            else:
                return None
            z, value, grad, hess = z + step, new_value, new_grad, new_hess
            if np.any(np.abs(z) >= LOG_PARAM_BOUND):
                return None
    return z if np.max(np.abs(grad)) <= GRADIENT_TOLERANCE else None


def fit_log_params(likelihood: Likelihood, param_names: Sequence[str], scales: np.ndarray,
                   settings: FitSettings, model_name: str, free: Optional[np.ndarray] = None) -> np.ndarray:
    """Maximum-likelihood parameters (natural scale) of a weighted log-likelihood.

    The objective is the mean negative log-likelihood per customer plus
    ``penalizer * sum(internal_params**2)`` (internal = params / ``scales``), as in
    lifetimes, minimised over log-parameters from a start at internal all-ones: multi-start
    L-BFGS (:func:`minimize_negative_log_likelihood`) on the data, or on a systematic
    subsample when the data has ``settings.subsample_from`` rows or more, then Newton
    steps with the analytic Hessian on the full data. If the Newton steps fail, L-BFGS
    continues on the full data from the best point found. The search stays in the box
    :data:`LOG_PARAM_BOUND`; ``settings.advice`` ends the error of a fit that does not converge.
    Parameters flagged in ``free`` (covariate coefficients) are real numbers, not logs,
    start at 0 and stay in the same box.
    """
    with one_blas_thread():
        return _fit_log_params(likelihood, param_names, np.asarray(scales, dtype=float), settings, model_name, free)


def _fit_log_params(likelihood: Likelihood, param_names: Sequence[str], scales: np.ndarray,
                    settings: FitSettings, model_name: str, free: Optional[np.ndarray]) -> np.ndarray:
    full = _LogObjective(likelihood, scales, settings.penalizer, free)
    large = likelihood.n_rows >= settings.subsample_from
    search = (_LogObjective(likelihood.subsample(settings.subsample_rows), scales, settings.penalizer, free)
              if large else full)
    z, _ = minimize_negative_log_likelihood(
        search.value_and_gradient, np.zeros(len(param_names)), param_names, n_starts=settings.n_starts,
        seed=settings.seed, model_name=model_name, advice=settings.advice, bound=LOG_PARAM_BOUND)
    refined = newton_refine(full, z, settings.max_newton_steps)
    if refined is None and large:
        refined, _ = minimize_negative_log_likelihood(
            full.value_and_gradient, z, param_names, n_starts=1, model_name=model_name,
            advice=settings.advice, bound=LOG_PARAM_BOUND)
    return full.params(z if refined is None else refined)
