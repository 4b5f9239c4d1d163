"""Customer features of a few customers in plain numpy: the small-input fast path.

The same numbers as :func:`custscore.features.customers.customer_features` applied to
:func:`custscore.features.periods.merge_periods` (tested equal on CDNOW, edge cases and
random logs), without pandas: a pandas call has a fixed cost whatever its size and the
pandas pipeline makes hundreds of them, which dominates for a few customers (numbers in
``benchmarks/HTTP_RESULTS.md``). Large logs keep the pandas (or DuckDB/Spark) engines.

Input is flat arrays, one entry per transaction, sorted by customer code, then time,
then amount (the order of :func:`custscore.features.io.normalise_transactions`):

- ``codes`` (int): the customer's position in the caller's customer list;
- ``days`` (int64): the purchase day as whole days since 1970-01-01 (the time of day
  dropped, :func:`custscore.features.days.day_numbers`);
- ``amounts`` (float64): amounts, negative for returns.

Days merge as in ``merge_periods``, through the same exact netting
(:mod:`custscore.features.netting`): one purchase per customer and day whose amount is
the day's int64 sum of units; a day netting below 0 is a return-only day and is dropped.
The day amounts are therefore bit-identical to the pandas engine's.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from custscore.config import DAYS_PER_UNIT, ColumnMap, parse_date
from custscore.features.activity import activity_features
from custscore.features.days import day_numbers  # noqa: F401  (the fast path's input scale, re-exported)
from custscore.features.months import MONTH_COLUMNS, last_complete_month
from custscore.features.netting import checked_units, day_units, units_amount
from custscore.features.rfm import duration_columns

#: ``date.toordinal()`` of 1970-01-01: ordinal minus this is the day number.
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_ACTIVITY_DEFAULTS = inspect.signature(activity_features).parameters
#: Trailing windows and trend window in days: activity_features' own defaults, so the
#: two paths produce the same columns.
WINDOWS_DAYS: tuple[int, ...] = _ACTIVITY_DEFAULTS["windows_days"].default
TREND_DAYS: int = _ACTIVITY_DEFAULTS["trend_days"].default


def day_number(value: Any) -> int:
    """Day number of one date or date-time (``datetime``, ``date`` or anything ``parse_date`` reads).

    >>> day_number(dt.datetime(1997, 9, 30, 23, 59)), day_number("1997-09-30")
    (10134, 10134)
    """
    if not isinstance(value, dt.date):
        value = parse_date(value, "date")
    return value.toordinal() - EPOCH_ORDINAL


@dataclass(frozen=True)
class DailyPurchases:
    """Purchases merged per customer and day, sorted by code then day (flat arrays)."""

    codes: np.ndarray
    days: np.ndarray
    amounts: np.ndarray


def merge_days(codes: np.ndarray, days: np.ndarray, amounts: np.ndarray,
               amount_decimals: int = ColumnMap.amount_decimals) -> DailyPurchases:
    """One purchase per (code, day) with the exactly netted amount; return-only days (net < 0) dropped.

    Inputs are grouped by code, then day (any order within a day); they are not modified.
    Amounts net in units of ``10**-amount_decimals`` (:mod:`custscore.features.netting`).

    >>> m = merge_days(np.array([0, 0, 0, 1]), np.array([5, 5, 9, 5]), np.array([2.0, 3.0, -1.0, 4.0]))
    >>> m.codes.tolist(), m.days.tolist(), m.amounts.tolist()
    ([0, 1], [5, 5], [5.0, 4.0])
    """
    codes = np.asarray(codes, dtype="int64")
    days = np.asarray(days, dtype="int64")
    units = checked_units(amounts, amount_decimals)
    new_day = np.ones(len(codes), dtype=bool)
    new_day[1:] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new_day)
    sums = day_units(units, starts)
    kept = sums >= 0
    return DailyPurchases(codes[starts][kept], days[starts][kept], units_amount(sums[kept], amount_decimals))


@dataclass(frozen=True)
class SmallFeatures:
    """Feature columns of the customers with a purchase on or before ``as_of``.

    ``customers``: their codes (increasing); ``columns``: name -> array aligned with
    ``customers``, the columns of :func:`custscore.features.customers.customer_features`
    (``first_purchase`` / ``last_purchase`` as day numbers).
    """

    customers: np.ndarray
    columns: dict[str, np.ndarray]


def small_customer_features(purchases: DailyPurchases, as_of: Any, time_unit: str = "D") -> SmallFeatures:
    """RFM (durations in ``time_unit``), activity (days) and calendar-month counts at ``as_of``.

    ``purchases`` comes from :func:`merge_days`; days after ``as_of`` (inclusive) are
    ignored. Column meanings and units are those of ``rfm_summary``,
    ``activity_features`` (windows :data:`WINDOWS_DAYS`, trend :data:`TREND_DAYS`) and
    ``calendar_month_counts``.

    >>> p = merge_days(np.array([0, 0, 0]), np.array([0, 10, 30]), np.array([5.0, 10.0, 20.0]))
    >>> f = small_customer_features(p, "1970-01-31", "D").columns
    >>> [f[c].tolist() for c in ("frequency", "recency_days", "monetary_value", "ipt_std_days", "n_purchases_30d")]
    [[2], [30.0], [15.0], [5.0], [2]]
    """
    recency_col, t_col = duration_columns(time_unit)
    as_of = parse_date(as_of, "as_of")
    today = day_number(as_of)
    inside = purchases.days <= today
    codes, days, amounts = purchases.codes[inside], purchases.days[inside], purchases.amounts[inside]

    new_customer = np.ones(len(codes), dtype=bool)
    new_customer[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new_customer)
    group = np.cumsum(new_customer) - 1
    n = len(starts)

    def group_sum(weights: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=weights, minlength=n)

    count = np.bincount(group, minlength=n).astype("int64")
    ends = starts + count - 1
    age = today - days  # days before as_of, >= 0
    frequency = count - 1
    per_unit = DAYS_PER_UNIT[time_unit]
    columns: dict[str, np.ndarray] = {
        "frequency": frequency,
        recency_col: (days[ends] - days[starts]).astype("float64") / per_unit,
        t_col: age[starts].astype("float64") / per_unit,
        "monetary_value": np.where(frequency > 0, (group_sum(amounts) - amounts[starts]) / np.maximum(frequency, 1),
                                   0.0),
        "first_purchase": days[starts],
        "last_purchase": days[ends],
        "tenure_days": age[starts].astype("float64"),
        "days_since_last_purchase": age[ends].astype("float64"),
    }
    for w in WINDOWS_DAYS:
        recent = age < w
        columns[f"n_purchases_{w}d"] = group_sum(recent).astype("int64")
        columns[f"spend_{w}d"] = group_sum(amounts * recent)
    columns.update(_gap_statistics(group, age, count))
    last_window = group_sum(age < TREND_DAYS)
    previous_window = group_sum((age >= TREND_DAYS) & (age < 2 * TREND_DAYS))
    both = last_window + previous_window
    with np.errstate(divide="ignore", invalid="ignore"):
        columns[f"trend_{TREND_DAYS}d"] = np.where(both > 0, (last_window - previous_window) / both, 0.0)
    columns.update(_month_counts(group, days, n, as_of))
    return SmallFeatures(customers=codes[starts], columns=columns)


@functools.lru_cache(maxsize=None)
def feature_names(time_unit: str = "D") -> tuple[str, ...]:
    """Columns :func:`small_customer_features` returns for ``time_unit``, in order.

    >>> feature_names("W")[:4]
    ('frequency', 'recency_weeks', 'T_weeks', 'monetary_value')
    """
    empty = merge_days(np.zeros(0), np.zeros(0), np.zeros(0))
    return tuple(small_customer_features(empty, "1970-01-01", time_unit).columns)


def _gap_statistics(group: np.ndarray, age: np.ndarray, count: np.ndarray) -> dict[str, np.ndarray]:
    """``ipt_mean_days`` (NaN below 2 purchases) and ``ipt_std_days`` (ddof 0, NaN below 3)."""
    n = len(count)
    follows = np.zeros(len(group), dtype=bool)
    follows[1:] = group[1:] == group[:-1]
    gap = np.zeros(len(group))
    gap[1:] = (age[:-1] - age[1:]).astype("float64")
    n_gaps = count - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n_gaps >= 1, np.bincount(group, weights=np.where(follows, gap, 0.0), minlength=n) / n_gaps,
                        np.nan)
        deviation = np.where(follows, gap - mean[group], 0.0)
        spread = np.sqrt(np.bincount(group, weights=deviation * deviation, minlength=n) / n_gaps)
    return {"ipt_mean_days": mean, "ipt_std_days": np.where(n_gaps >= 2, spread, np.nan)}


def _month_counts(group: np.ndarray, days: np.ndarray, n: int, as_of) -> dict[str, np.ndarray]:
    """Purchase days in the last complete calendar month and the month before (int64)."""
    start, end = last_complete_month(as_of)
    first, last = day_number(start), day_number(end)
    before = day_number((start - dt.timedelta(days=1)).replace(day=1))
    in_last = (days >= first) & (days <= last)
    in_before = (days >= before) & (days < first)
    return {MONTH_COLUMNS[0]: np.bincount(group, weights=in_last, minlength=n).astype("int64"),
            MONTH_COLUMNS[1]: np.bincount(group, weights=in_before, minlength=n).astype("int64")}
