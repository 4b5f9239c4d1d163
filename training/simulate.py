"""Seeded, vectorised simulators of the BG/NBD and Gamma-Gamma generative stories.

Used by the tests (parameter recovery) and the benchmarks. No per-customer Python loops.
The purchase-model parameters of :func:`simulate_bgnbd`, :func:`simulate_mbgnbd` and
:func:`simulate_paretonbd` are scalars or one value per customer: a world with
time-invariant covariates (Fader and Hardie 2007, note 019) passes e.g.
``alpha = alpha0 * exp(-gamma' z)`` per customer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.config import parse_date
from custscore.errors import CustscoreError


def _positive(name: str, value: Any) -> Any:
    """``value`` (a number, or an array of per-customer values) if finite and > 0 everywhere."""
    arr = np.asarray(value, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        shown = float(arr) if arr.ndim == 0 else f"an array with min {float(np.min(arr)) if arr.size else 'none'}"
        raise CustscoreError(f"{name}: must be a finite number > 0, got {shown!r}")
    return float(arr) if arr.ndim == 0 else arr


def _draw_bgnbd(rng: np.random.Generator, n: int, r: Any, alpha: Any, a: Any, b: Any, T: np.ndarray,
                dropout_at_zero: bool = False):
    """Return per-customer ``(lam, x, n_arrivals)`` for observation windows ``(0, T]``.

    ``lam ~ Gamma(r, rate alpha)``, ``p ~ Beta(a, b)``. The Poisson process would bring
    ``N ~ Poisson(lam T)`` arrivals; the customer drops out right after the ``K``-th repeat
    purchase, ``K ~ Geometric(p)`` on 1, 2, ... (on 0, 1, ... with ``dropout_at_zero``,
    MBG/NBD: the first purchase may be the last); the observed count is ``x = min(N, K)``.
    """
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    n_arrivals = rng.poisson(lam * T)
    # K = ceil(log U / log(1 - p)) as floats: numpy's geometric overflows int64 for tiny p.
    u = rng.random(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log1p(-u) / np.log1p(-p))
    k = np.where(np.isfinite(k), np.maximum(k, 1.0), np.inf) - (1.0 if dropout_at_zero else 0.0)
    x = np.minimum(n_arrivals, k).astype(np.int64)
    return lam, x, n_arrivals


def _windows(n_customers: int, T: Any, **params: float) -> np.ndarray:
    """Check the parameters (> 0) and return ``T`` broadcast to ``n_customers`` windows (> 0)."""
    for name, val in params.items():
        _positive(name, val)
    T_arr = np.broadcast_to(np.asarray(T, dtype=float), (int(n_customers),)).copy()
    if np.any(~np.isfinite(T_arr)) or np.any(T_arr <= 0):
        raise CustscoreError("T: must be finite and > 0")
    for name, val in params.items():
        if np.ndim(val) and np.shape(val) != T_arr.shape:
            raise CustscoreError(f"{name}: must be a number or one value per customer ({len(T_arr)}), "
                                 f"got shape {np.shape(val)}")
    return T_arr


def _summary(rng: np.random.Generator, x: np.ndarray, n_arrivals: np.ndarray, window: np.ndarray,
             T_arr: np.ndarray) -> pd.DataFrame:
    """``(frequency, recency, T)``: the last of ``x`` kept out of ``n_arrivals`` uniform arrivals on ``(0, window]``.

    The ``x``-th order statistic of ``N`` uniforms is ``window * Beta(x, N - x + 1)`` (0 when x = 0).
    """
    has = x > 0
    recency = np.zeros(len(x))
    recency[has] = window[has] * rng.beta(x[has], n_arrivals[has] - x[has] + 1)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": T_arr})


def simulate_bgnbd(
    n_customers: int, r: float, alpha: float, a: float, b: float, T: Any, seed: int
) -> pd.DataFrame:
    """Simulate ``(frequency, recency, T)`` per customer from the BG/NBD (FHL 2005).

    Generative story: ``lambda ~ Gamma(shape r, rate alpha)``, ``p ~ Beta(a, b)``; repeat
    purchases arrive as a Poisson(lambda) process on ``(0, T]`` and after each repeat
    purchase the customer drops out with probability ``p``. Given ``N`` arrivals on
    ``(0, T]`` they are ``N`` sorted uniforms times ``T``; with dropout after the ``K``-th,
    ``x = min(N, K)`` and the last observed purchase is the ``x``-th order statistic of
    ``N`` uniforms, so ``recency = T * Beta(x, N - x + 1)`` (0 when ``x = 0``).

    ``T`` is a scalar or an array of length ``n_customers``; ``alpha`` is in the unit of
    ``T``; each parameter is a number or one value per customer (covariates). Returns a
    DataFrame with columns ``frequency`` (int), ``recency``, ``T``.

    >>> simulate_bgnbd(3, 0.25, 4.0, 0.8, 2.5, 39.0, seed=1).shape
    (3, 3)
    """
    T_arr = _windows(n_customers, T, r=r, alpha=alpha, a=a, b=b)
    rng = np.random.default_rng(seed)
    _, x, n_arrivals = _draw_bgnbd(rng, len(T_arr), r, alpha, a, b, T_arr)
    return _summary(rng, x, n_arrivals, T_arr, T_arr)


def simulate_mbgnbd(
    n_customers: int, r: float, alpha: float, a: float, b: float, T: Any, seed: int
) -> pd.DataFrame:
    """Simulate ``(frequency, recency, T)`` from the MBG/NBD (Batislam et al. 2007).

    As :func:`simulate_bgnbd`, but the customer may drop out right after the first
    purchase too (with probability ``p``): the number of repeat purchases before dropout
    is ``K ~ Geometric(p)`` on 0, 1, .... Units as :func:`simulate_bgnbd`.
    """
    T_arr = _windows(n_customers, T, r=r, alpha=alpha, a=a, b=b)
    rng = np.random.default_rng(seed)
    _, x, n_arrivals = _draw_bgnbd(rng, len(T_arr), r, alpha, a, b, T_arr, dropout_at_zero=True)
    return _summary(rng, x, n_arrivals, T_arr, T_arr)


def simulate_paretonbd(
    n_customers: int, r: float, alpha: float, s: float, beta: float, T: Any, seed: int
) -> pd.DataFrame:
    """Simulate ``(frequency, recency, T)`` from the Pareto/NBD (Schmittlein et al. 1987).

    ``lambda ~ Gamma(shape r, rate alpha)``, ``mu ~ Gamma(shape s, rate beta)``, lifetime
    ``tau ~ Exponential(mu)``; purchases are Poisson(lambda) on ``(0, min(tau, T)]``, so
    ``x ~ Poisson(lambda min(tau, T))`` and recency is the largest of ``x`` uniforms on
    that window. ``alpha`` and ``beta`` are in the unit of ``T``.
    """
    T_arr = _windows(n_customers, T, r=r, alpha=alpha, s=s, beta=beta)
    rng = np.random.default_rng(seed)
    n = len(T_arr)
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    mu = rng.gamma(shape=s, scale=1.0 / beta, size=n)
    window = np.minimum(rng.exponential(size=n) / mu, T_arr)
    x = rng.poisson(lam * window)
    return _summary(rng, x, x, window, T_arr)


def simulate_spend(frequency: Any, p: float, q: float, v: float, seed: int) -> np.ndarray:
    """Simulate each customer's mean spend over ``frequency`` transactions (Gamma-Gamma model).

    ``nu ~ Gamma(shape q, rate v)`` per customer and the mean of ``x`` transactions of
    ``Gamma(shape p, rate nu)`` is ``Gamma(shape p x, rate x nu)``. Customers with
    ``frequency == 0`` get NaN (no transaction, no mean). Shape ``(n_customers,)``.
    """
    for name, val in (("p", p), ("q", q), ("v", v)):
        _positive(name, val)
    x = np.asarray(frequency)
    if x.ndim != 1 or x.dtype.kind not in "iuf" or np.any(x < 0) or np.any(x != np.floor(x)):
        raise CustscoreError("frequency: must be a one-dimensional array of whole numbers >= 0")
    x = x.astype(float)
    rng = np.random.default_rng(seed)
    nu = rng.gamma(shape=q, scale=1.0 / v, size=len(x))
    has = x > 0
    out = np.full(len(x), np.nan)
    out[has] = rng.gamma(shape=p * x[has], scale=1.0 / (x[has] * nu[has]))
    return out


def simulate_transactions(
    n_customers: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float,
    q: float,
    v: float,
    start: Any,
    end: Any,
    seed: int,
    *,
    cohort_days: int = 90,
    drift_per_year: float = 0.0,
) -> pd.DataFrame:
    """Simulate a transaction log: columns ``customer_id`` (str), ``date``, ``amount``.

    Days are the unit: ``alpha`` is in days (``lambda`` per day). Each customer's first
    purchase is on a day drawn uniformly from the first ``cohort_days`` days from ``start``
    (capped at the whole period). Repeat purchases follow the BG/NBD story in continuous
    time up to the end of day ``end`` and are dated by the day they fall in, so two may
    share a day (the features merge purchases per day). Every transaction, the first one
    included, spends ``Gamma(shape p, rate nu)`` with ``nu ~ Gamma(shape q, rate v)`` per
    customer (the Gamma-Gamma model is fitted on the repeat ones).

    The ``x`` repeat times out of ``N`` Poisson arrivals are drawn as the first ``x``
    uniform order statistics via exponential spacings: ``U_(j) = (E_1 + ... + E_j) / S``
    with ``S = E_1 + ... + E_x + Gamma(N - x + 1)``. Rows are sorted by customer and date;
    ``customer_id`` is the zero-padded customer number.

    >>> log = simulate_transactions(5, 0.25, 28.0, 0.8, 2.5, 6.0, 3.7, 15.0,
    ...     "1997-01-01", "1997-12-31", seed=0)
    >>> list(log.columns), log["customer_id"].iloc[0]
    (['customer_id', 'date', 'amount'], '0')
    """
    n = int(n_customers)
    for name, val in (("r", r), ("alpha", alpha), ("a", a), ("b", b), ("p", p), ("q", q), ("v", v)):
        _positive(name, val)
    start_ts, end_ts = parse_date(start, "start"), parse_date(end, "end")
    span_days = int((end_ts - start_ts).days) + 1
    if span_days <= 0:
        raise CustscoreError(f"end: {end_ts.date()} must not be before start {start_ts.date()}")
    if isinstance(cohort_days, bool) or not isinstance(cohort_days, (int, np.integer)) or cohort_days <= 0:
        raise CustscoreError(f"cohort_days: must be a whole number of days > 0, got {cohort_days!r}")
    rng = np.random.default_rng(seed)

    first_day = rng.integers(0, min(int(cohort_days), span_days), size=n)
    window = (span_days - first_day).astype(float)  # first day .. end of day `end`
    k = float(drift_per_year) / 365.0
    if not np.isfinite(k):
        raise CustscoreError(f"drift_per_year: must be a finite number, got {drift_per_year!r}")
    if k != 0.0:  # the window in operational time, where the rates are constant
        window = np.expm1(k * span_days) / k - np.expm1(k * first_day) / k
    _, x, n_arrivals = _draw_bgnbd(rng, n, r, alpha, a, b, window)

    total = int(x.sum())
    owner = np.repeat(np.arange(n), x)
    gaps = rng.exponential(size=total)
    padded = np.concatenate(([0.0], np.cumsum(gaps)))  # padded[k] = E_1 + ... + E_k overall
    offsets = np.concatenate(([0], np.cumsum(x)[:-1]))
    before = padded[offsets]  # running sum before each customer's first gap
    within = padded[1:] - np.repeat(before, x)  # E_1 + ... + E_j within each customer
    own_sum = padded[offsets + x] - before
    rest = rng.gamma(shape=(n_arrivals - x + 1).astype(float))  # the N - x + 1 unused spacings
    uniform_order = within / np.repeat(own_sum + rest, x)
    if k == 0.0:
        repeat_day = np.repeat(first_day, x) + np.floor(uniform_order * np.repeat(window, x)).astype(np.int64)
    else:
        operational = np.expm1(k * np.repeat(first_day, x)) / k + uniform_order * np.repeat(window, x)
        repeat_day = np.floor(np.log1p(k * operational) / k).astype(np.int64)
    repeat_day = np.minimum(repeat_day, span_days - 1)  # guards the measure-zero U = 1 edge

    cust = np.concatenate([np.arange(n), owner])
    day = np.concatenate([first_day, repeat_day])
    nu = rng.gamma(shape=q, scale=1.0 / v, size=n)
    amount = rng.gamma(shape=p, scale=1.0 / nu[cust])

    order = np.lexsort((day, cust))
    width = len(str(max(n - 1, 0)))
    ids = np.char.zfill(np.arange(n).astype(str), width)
    dates = np.datetime64(start_ts.date(), "D") + day[order].astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "customer_id": pd.Series(ids[cust[order]], dtype=object),
            "date": pd.to_datetime(dates),
            "amount": amount[order],
        }
    )


def _split_at(rng: np.random.Generator, n_arrivals: np.ndarray, kept: np.ndarray, span: np.ndarray,
              T_arr: np.ndarray, horizon: float) -> pd.DataFrame:
    """``(frequency, recency, T, holdout)`` from purchase times: the first ``kept`` of ``n_arrivals``
    uniform arrivals on ``(0, span]``; purchases up to ``T`` are the calibration summary, those in
    ``(T, T + horizon]`` the ``holdout`` count."""
    n = len(n_arrivals)
    owner = np.repeat(np.arange(n), n_arrivals)
    times = rng.random(len(owner)) * span[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    starts = np.concatenate(([0], np.cumsum(n_arrivals)[:-1]))
    rank = np.arange(len(owner)) - np.repeat(starts, n_arrivals)
    keep = rank < kept[owner]
    owner, times = owner[keep], times[keep]
    in_cal = times <= T_arr[owner]
    x = np.bincount(owner[in_cal], minlength=n)
    recency = np.zeros(n)
    np.maximum.at(recency, owner[in_cal], times[in_cal])
    in_holdout = ~in_cal & (times <= T_arr[owner] + horizon)
    holdout = np.bincount(owner[in_holdout], minlength=n)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": T_arr, "holdout": holdout})


def simulate_with_holdout(model: str, n_customers: int, params: dict[str, float], T: Any, horizon: float,
                          seed: int) -> pd.DataFrame:
    """Simulate ``(frequency, recency, T)`` and each customer's repeat purchases in ``(T, T + horizon]``.

    ``model`` is ``bgnbd``, ``mbgnbd`` (params r, alpha, a, b) or ``pnbd`` (r, alpha, s,
    beta), with the stories of :func:`simulate_bgnbd`, :func:`simulate_mbgnbd` and
    :func:`simulate_paretonbd` run on ``(0, T + horizon]``. Returns columns ``frequency``,
    ``recency``, ``T`` and ``holdout`` (int). ``horizon`` and ``T`` in the unit of ``alpha``.

    >>> list(simulate_with_holdout("pnbd", 4, dict(r=0.5, alpha=5.0, s=0.5, beta=10.0), 30.0, 10.0, seed=0).columns)
    ['frequency', 'recency', 'T', 'holdout']
    """
    horizon = _positive("horizon", horizon)
    T_arr = _windows(n_customers, T, **params)
    rng = np.random.default_rng(seed)
    n = len(T_arr)
    span = T_arr + horizon
    if model == "pnbd":
        lam = rng.gamma(shape=params["r"], scale=1.0 / params["alpha"], size=n)
        mu = rng.gamma(shape=params["s"], scale=1.0 / params["beta"], size=n)
        span = np.minimum(rng.exponential(size=n) / mu, span)
        n_arrivals = rng.poisson(lam * span)
        kept = n_arrivals
    elif model in ("bgnbd", "mbgnbd"):
        _, kept, n_arrivals = _draw_bgnbd(rng, n, params["r"], params["alpha"], params["a"], params["b"], span,
                                          dropout_at_zero=model == "mbgnbd")
    else:
        raise CustscoreError(f"model: must be bgnbd, mbgnbd or pnbd, got {model!r}")
    return _split_at(rng, n_arrivals, kept, span, T_arr, horizon)
