"""Per-customer BTYD summary (frequency, recency, T, monetary value) at a cutoff.

Conventions (as in Fader, Hardie and Lee 2005 and lifetimes with ``freq="D"``):
input is the output of :func:`custscore.features.periods.merge_periods`, so one purchase
per customer and day. ``cutoff`` is the last day of the calibration period, inclusive.
Durations are counted in whole days and divided by ``DAYS_PER_UNIT[time_unit]`` (7 for
weeks), so weeks are fractional (lifetimes' ``freq="W"`` rounds to whole weeks instead).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.config import DAYS_PER_UNIT, parse_date
from custscore.errors import CustscoreError
from custscore.features.runs import PurchaseRuns, purchase_runs

_UNIT_NAMES = {"D": "days", "W": "weeks"}


def duration_columns(time_unit: str) -> tuple[str, str]:
    """Names of the recency and T columns for a time unit.

    >>> duration_columns("D")
    ('recency_days', 'T_days')
    >>> duration_columns("W")
    ('recency_weeks', 'T_weeks')
    """
    if time_unit not in DAYS_PER_UNIT or time_unit not in _UNIT_NAMES:
        raise CustscoreError(f"time_unit: must be one of {sorted(DAYS_PER_UNIT)}, got {time_unit!r}")
    unit = _UNIT_NAMES[time_unit]
    return f"recency_{unit}", f"T_{unit}"


def rfm_columns(time_unit: str) -> tuple[str, ...]:
    """The columns of :func:`rfm_summary`, in order.

    >>> rfm_columns("W")
    ('frequency', 'recency_weeks', 'T_weeks', 'monetary_value', 'first_purchase', 'last_purchase')
    """
    recency_col, t_col = duration_columns(time_unit)
    return ("frequency", recency_col, t_col, "monetary_value", "first_purchase", "last_purchase")


def rfm_summary(purchases: pd.DataFrame, cutoff: Any, time_unit: str = "D") -> pd.DataFrame:
    """BTYD summary of the purchases on or before ``cutoff`` (inclusive).

    Returns a frame indexed by ``customer_id`` (sorted; customers whose first purchase is
    after the cutoff are absent) with columns:

    - ``frequency`` (int64): purchase periods minus 1 (repeat purchases);
    - ``recency_<unit>`` (float64): last minus first purchase;
    - ``T_<unit>`` (float64): cutoff minus first purchase;
    - ``monetary_value`` (float64): mean amount of the repeat purchases (first excluded),
      0.0 when ``frequency`` is 0;
    - ``first_purchase``, ``last_purchase`` (``datetime64[ns]``).

    Durations are days divided by 7 when ``time_unit="W"``.

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                   "date": pd.to_datetime(["2020-01-01", "2020-01-08", "2020-01-15", "2020-01-20"]),
    ...                   "amount": [5.0, 10.0, 20.0, 7.0]})
    >>> rfm_summary(p, "2020-01-15")[["frequency", "recency_days", "T_days", "monetary_value"]].to_dict("index")
    {'a': {'frequency': 2, 'recency_days': 14.0, 'T_days': 14.0, 'monetary_value': 15.0}}
    """
    duration_columns(time_unit)  # an unknown unit is refused before any work
    runs = purchase_runs(purchases, "rfm_summary", parse_date(cutoff, "cutoff"))
    return pd.DataFrame(rfm_arrays(runs, time_unit), index=runs.index)


def rfm_arrays(runs: PurchaseRuns, time_unit: str) -> dict[str, np.ndarray]:
    """:func:`rfm_summary`'s columns (name -> array, in order) of checked purchase runs, cutoff ``runs.until``."""
    first_purchase, last_purchase = runs.dates[runs.starts], runs.dates[runs.last_row]
    out = btyd_of_customers(runs.count, _days(first_purchase), _days(last_purchase),
                            runs.sums(runs.amount) - runs.amount[runs.starts],
                            float(_days(np.datetime64(runs.until, "ns"))), DAYS_PER_UNIT[time_unit])
    return btyd_columns(out, first_purchase, last_purchase, time_unit)


def _days(dates: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of ``datetime64[ns]`` values, time of day as a fraction (float64)."""
    return ((dates - np.datetime64(0, "ns")) / np.timedelta64(1, "D")).astype("float64")


def rfm_frame(out: dict[str, np.ndarray], first_purchase: np.ndarray, last_purchase: np.ndarray,
              index: pd.Index, time_unit: str) -> pd.DataFrame:
    """:func:`rfm_summary`'s frame from :func:`btyd_from_runs`' arrays and the first and
    last purchase dates (``datetime64[ns]``), one row per customer of ``index``."""
    return pd.DataFrame(btyd_columns(out, first_purchase, last_purchase, time_unit), index=index)


def btyd_columns(out: dict[str, np.ndarray], first_purchase: np.ndarray, last_purchase: np.ndarray,
                 time_unit: str) -> dict[str, np.ndarray]:
    """:func:`rfm_frame`'s columns (name -> array, in :func:`rfm_columns` order)."""
    recency_col, t_col = duration_columns(time_unit)
    return {
        "frequency": out["frequency"],
        recency_col: out["recency"],
        t_col: out["T"],
        "monetary_value": out["monetary_value"],
        "first_purchase": first_purchase,
        "last_purchase": last_purchase,
    }


def run_numbers(starts: np.ndarray, n: int) -> np.ndarray:
    """Row -> number of its run (int32) for runs starting at ``starts`` (sorted, ``starts[0] == 0``) of ``n`` rows:
    :func:`btyd_from_runs`' ``runs``.

    >>> run_numbers(np.array([0, 2, 3]), 5).tolist()
    [0, 0, 1, 2, 2]
    """
    return np.repeat(np.arange(len(starts), dtype=np.int32), np.diff(starts, append=n))


def btyd_from_runs(runs: np.ndarray, starts: np.ndarray, days: np.ndarray, amount: np.ndarray,
                   cutoff_day: float, days_per_unit: float) -> dict[str, np.ndarray]:
    """The BTYD summary arrays of purchases sorted by customer, then day (one row per day).

    ``runs`` is each row's customer number (0, 1, ... in row order), ``starts`` each
    customer's first row, ``days`` the purchase days and ``cutoff_day`` the cutoff on the
    same day scale (whole days, ints or floats), ``amount`` the day's spend. Returns
    ``frequency`` (int64), ``recency`` and ``T`` (days / ``days_per_unit``),
    ``monetary_value`` (mean repeat spend, 0 without repeats) and ``last_row`` (each
    customer's last row). Spend adds up in row order, so every engine gets the same bits.
    """
    count = np.diff(starts, append=len(runs)).astype("int64")
    last_row = starts + count - 1
    repeat_spend = np.bincount(runs, weights=amount, minlength=len(starts)) - amount[starts]
    out = btyd_of_customers(count, days[starts], days[last_row], repeat_spend, cutoff_day, days_per_unit)
    out["last_row"] = last_row
    return out


def btyd_of_customers(count: np.ndarray, first_day: np.ndarray, last_day: np.ndarray, repeat_spend: np.ndarray,
                      cutoff_day: float, days_per_unit: float) -> dict[str, np.ndarray]:
    """The BTYD summary arrays from each customer's purchase days ``count`` (int64), first and
    last purchase day and spend on the repeat days (:func:`btyd_from_runs`, without ``last_row``)."""
    frequency = count - 1
    return {
        "frequency": frequency,
        "recency": (last_day - first_day) / days_per_unit,
        "T": (cutoff_day - first_day) / days_per_unit,
        "monetary_value": np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1), 0.0).astype("float64"),
    }


def window_purchases(purchases: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    """Purchase periods and spend per customer with ``start < date <= end``.

    Returns a frame indexed by ``customer_id`` (sorted) with ``n_purchases`` (int64) and
    ``spend`` (float64); only customers with at least one purchase in the window appear,
    callers reindex with fill 0.

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                   "date": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-02"]),
    ...                   "amount": [5.0, 10.0, 7.0]})
    >>> window_purchases(p, "2020-01-01", "2020-01-05").to_dict("index")
    {'a': {'n_purchases': 1, 'spend': 10.0}, 'b': {'n_purchases': 1, 'spend': 7.0}}
    """
    start = parse_date(start, "start")
    end = parse_date(end, "end")
    if end < start:
        raise CustscoreError(f"window: end {end.date()} is before start {start.date()}")
    runs = purchase_runs(purchases, "window_purchases", end, after=start)
    return pd.DataFrame({"n_purchases": runs.count, "spend": runs.sums(runs.amount).astype("float64")}, index=runs.index)
