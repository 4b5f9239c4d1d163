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
from custscore.features.periods import PURCHASE_COLUMNS, _require_columns

_UNIT_NAMES = {"D": "days", "W": "weeks"}
#: Rows up to which customer ids are compared as Python objects (see _new_customer).
_SMALL_COLUMN = 10_000


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


def _checked_purchases(purchases: pd.DataFrame, what: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Columns present, one row per (customer, date); returned sorted (a new frame).

    The frame keeps :data:`PURCHASE_COLUMNS` and the ``extra`` columns, in that order.
    """
    _require_columns(purchases, PURCHASE_COLUMNS + tuple(extra), what)
    frame = purchases.loc[:, list(PURCHASE_COLUMNS) + list(extra)]
    if not _is_sorted(frame):  # merge_periods output is already sorted: skip the sort
        frame = frame.sort_values(["customer_id", "date"], kind="stable")
    same = ~_new_customer(frame["customer_id"])
    dates = frame["date"].to_numpy()
    if (same[1:] & (dates[1:] == dates[:-1])).any():
        raise CustscoreError(f"{what}: purchases must have one row per customer and day (use merge_periods first)")
    return frame


def _customer_runs(frame: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """For a frame sorted by customer: (customer index, run starts, group code per row).

    Groups by contiguous runs instead of hashing the string ids (much faster).
    """
    change = _new_customer(frame["customer_id"])
    starts = np.flatnonzero(change)
    codes = np.cumsum(change) - 1
    index = pd.Index(frame["customer_id"].iloc[starts], name="customer_id")
    return index, starts, codes


def _is_sorted(frame: pd.DataFrame) -> bool:
    """True when ``frame`` is sorted by customer_id, then date (checked in O(n))."""
    if not frame["customer_id"].is_monotonic_increasing:
        return False
    same = ~_new_customer(frame["customer_id"])[1:]
    dates = frame["date"].to_numpy()
    return bool((dates[1:][same] >= dates[:-1][same]).all())


def _new_customer(customers: pd.Series) -> np.ndarray:
    """Boolean per row: True where the id differs from the previous row (and at row 0).

    Stays in the column's own engine (Arrow for pandas' str dtype) instead of
    materialising millions of Python strings; short columns (e.g. one HTTP request)
    compare as Python objects, which skips the engine's fixed cost.
    """
    if len(customers) <= _SMALL_COLUMN and not customers.hasnans:
        values = customers.to_numpy(dtype=object)
        change = np.ones(len(values), dtype=bool)
        change[1:] = values[1:] != values[:-1]
        return change
    change = customers.ne(customers.shift()).to_numpy(dtype=bool, na_value=True, copy=True)
    if len(change):
        change[0] = True
    return change


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
    cutoff = parse_date(cutoff, "cutoff")
    frame = _checked_purchases(purchases, "rfm_summary")
    frame = frame[frame["date"] <= cutoff]  # still sorted by customer, then date
    index, starts, codes = _customer_runs(frame)
    dates = frame["date"].to_numpy().astype("datetime64[ns]")
    day = np.timedelta64(1, "D")
    days = ((dates - np.datetime64(0, "ns")) / day).astype("float64")
    out = btyd_from_runs(codes, starts, days, frame["amount"].to_numpy(dtype="float64"),
                         float((np.datetime64(cutoff, "ns") - np.datetime64(0, "ns")) / day), DAYS_PER_UNIT[time_unit])
    return rfm_frame(out, dates[starts], dates[out["last_row"]], index, time_unit)


def rfm_frame(out: dict[str, np.ndarray], first_purchase: np.ndarray, last_purchase: np.ndarray,
              index: pd.Index, time_unit: str) -> pd.DataFrame:
    """:func:`rfm_summary`'s frame from :func:`btyd_from_runs`' arrays and the first and
    last purchase dates (``datetime64[ns]``), one row per customer of ``index``."""
    recency_col, t_col = duration_columns(time_unit)
    return pd.DataFrame(
        {
            "frequency": out["frequency"],
            recency_col: out["recency"],
            t_col: out["T"],
            "monetary_value": out["monetary_value"],
            "first_purchase": first_purchase,
            "last_purchase": last_purchase,
        },
        index=index,
    )


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
    n = len(starts)
    count = np.diff(starts, append=len(runs)).astype("int64")
    last_row = starts + count - 1
    first, last = days[starts], days[last_row]
    frequency = count - 1
    repeat_spend = np.bincount(runs, weights=amount, minlength=n) - amount[starts]
    return {
        "frequency": frequency,
        "recency": (last - first) / days_per_unit,
        "T": (cutoff_day - first) / days_per_unit,
        "monetary_value": np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1), 0.0).astype("float64"),
        "last_row": last_row,
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
    frame = _checked_purchases(purchases, "window_purchases")
    frame = frame[(frame["date"] > start) & (frame["date"] <= end)]
    index, _, codes = _customer_runs(frame)
    amount = frame["amount"].to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "n_purchases": np.bincount(codes, minlength=len(index)).astype("int64"),
            "spend": np.bincount(codes, weights=amount, minlength=len(index)).astype("float64"),
        },
        index=index,
    )
