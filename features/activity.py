"""Activity features at a scoring date: tenure, recency, trailing windows, gaps, trend.

Input is the output of :func:`custscore.features.periods.merge_periods` (one purchase per
customer and day). All durations are in days. Windows are half-open on the left:
``w`` days back from ``as_of`` means ``as_of - w days < date <= as_of``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from custscore.config import parse_date
from custscore.errors import CustscoreError
from custscore.features.days import day_number_of
from custscore.features.runs import PurchaseRuns, purchase_runs

#: Default trailing windows and trend window, in days.
WINDOWS_DAYS: tuple[int, ...] = (30, 90, 365)
TREND_DAYS = 90


def _check_days(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CustscoreError(f"{name}: must be a whole number of days > 0, got {value!r}")
    return int(value)


def activity_features(
    purchases: pd.DataFrame,
    as_of: Any,
    windows_days: tuple[int, ...] = WINDOWS_DAYS,
    trend_days: int = TREND_DAYS,
) -> pd.DataFrame:
    """Per-customer activity at ``as_of`` (inclusive; later purchases are ignored).

    Index ``customer_id`` (sorted; only customers with a purchase on or before
    ``as_of``). Columns, all durations in days:

    - ``tenure_days`` (float64): ``as_of`` minus the first purchase;
    - ``days_since_last_purchase`` (float64): ``as_of`` minus the last purchase;
    - for each ``w`` in ``windows_days``: ``n_purchases_{w}d`` (int64) and ``spend_{w}d``
      (float64) over ``(as_of - w, as_of]``;
    - ``ipt_mean_days``: mean gap between consecutive purchase days, NaN with fewer than
      2 purchases; ``ipt_std_days``: population standard deviation (ddof=0) of the
      gaps, NaN with fewer than 3 purchases (a single gap has no spread to measure);
    - ``trend_{trend_days}d``: ``(n_last - n_prev) / (n_last + n_prev)`` in [-1, 1], with
      ``n_last`` the purchases in ``(as_of - trend_days, as_of]`` and ``n_prev`` those in
      ``(as_of - 2*trend_days, as_of - trend_days]``; 0.0 when both are 0.

    >>> p = pd.DataFrame({"customer_id": ["a", "a", "a"],
    ...                   "date": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-31"]),
    ...                   "amount": [5.0, 10.0, 20.0]})
    >>> f = activity_features(p, "2020-01-31", windows_days=(7,), trend_days=15)
    >>> f.loc["a", ["tenure_days", "n_purchases_7d", "ipt_mean_days", "ipt_std_days", "trend_15d"]].tolist()
    [30.0, 1.0, 15.0, 5.0, 0.0]
    """
    as_of = parse_date(as_of, "as_of")
    windows = tuple(_check_days(w, "windows_days") for w in windows_days)
    if len(set(windows)) != len(windows):
        raise CustscoreError(f"windows_days: duplicate windows in {list(windows_days)}")
    trend_days = _check_days(trend_days, "trend_days")

    runs = purchase_runs(purchases, "activity_features", as_of)
    return pd.DataFrame(activity_arrays(runs, windows, trend_days), index=runs.index)


def activity_arrays(runs: PurchaseRuns, windows_days: tuple[int, ...], trend_days: int) -> dict[str, np.ndarray]:
    """:func:`activity_features`' columns (name -> array, in order) of checked purchase runs
    at ``as_of = runs.until``, for checked windows (whole days > 0, distinct)."""
    # Whole day numbers, no timedelta64[ns]: any span of datetime64[ns] dates (584 years)
    # works. A purchase is "w days back" (age < w) when its day is after as_of - w; the
    # days rise within a customer, so those are the last rows of its run.
    as_of = day_number_of(runs.until)
    first, last = runs.day[runs.starts], runs.day[runs.last_row]
    columns: dict[str, np.ndarray] = {
        "tenure_days": (as_of - first).astype("float64"),
        "days_since_last_purchase": (as_of - last).astype("float64"),
    }
    within: dict[int, np.ndarray] = {}  # days back -> purchase days in that window
    for w in windows_days:
        inside = runs.day > as_of - w
        within[w] = columns[f"n_purchases_{w}d"] = runs.count_rows(inside)
        columns[f"spend_{w}d"] = runs.sums_where(inside, runs.amount)  # amounts are finite (merge_periods)

    # Gaps between consecutive purchase days of a customer: they add up (exactly, whole
    # days) to last minus first; the spread is summed in row order.
    n_gaps = runs.count - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ipt_mean = np.where(n_gaps >= 1, (last - first).astype("float64") / n_gaps, np.nan)
        dev = np.empty(len(runs.day), dtype="float64")
        np.subtract(runs.day[1:], runs.day[:-1], out=dev[1:])  # whole days, exact
        dev -= ipt_mean[runs.codes]
        dev[runs.starts] = 0.0
        dev *= dev
        ipt_var = runs.sums(dev) / n_gaps
        columns["ipt_mean_days"] = ipt_mean
        columns["ipt_std_days"] = np.where(n_gaps >= 2, np.sqrt(ipt_var), np.nan)

    def n_within(days_back: int) -> np.ndarray:
        return within[days_back] if days_back in within else runs.count_rows(runs.day > as_of - days_back)

    n_last = n_within(trend_days).astype("float64")
    n_prev = (n_within(2 * trend_days) - n_within(trend_days)).astype("float64")
    both = n_last + n_prev
    with np.errstate(divide="ignore", invalid="ignore"):
        columns[f"trend_{trend_days}d"] = np.where(both > 0, (n_last - n_prev) / both, 0.0)
    return columns
