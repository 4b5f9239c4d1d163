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
from custscore.features.days import day_number_of, day_numbers
from custscore.features.rfm import _checked_purchases, _customer_runs


def _check_days(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CustscoreError(f"{name}: must be a whole number of days > 0, got {value!r}")
    return int(value)


def activity_features(
    purchases: pd.DataFrame,
    as_of: Any,
    windows_days: tuple[int, ...] = (30, 90, 365),
    trend_days: int = 90,
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

    frame = _checked_purchases(purchases, "activity_features")
    frame = frame[frame["date"] <= as_of]
    index, starts, codes = _customer_runs(frame)  # frame is sorted by customer, then date
    n_customers = len(index)

    # days before as_of, >= 0, from whole day numbers: no timedelta64[ns], so any span of
    # datetime64[ns] dates (up to 584 years) works
    age = day_number_of(as_of) - day_numbers(frame["date"].to_numpy(dtype="datetime64[ns]"))
    amount = frame["amount"].to_numpy(dtype="float64")
    count = np.bincount(codes, minlength=n_customers)

    columns: dict[str, np.ndarray] = {
        "tenure_days": age[starts].astype("float64"),
        "days_since_last_purchase": age[starts + count - 1].astype("float64"),
    }
    for w in windows:
        inside = age < w
        columns[f"n_purchases_{w}d"] = np.bincount(codes, weights=inside, minlength=n_customers).astype("int64")
        columns[f"spend_{w}d"] = np.bincount(codes, weights=amount * inside, minlength=n_customers)

    # Gaps between consecutive purchase days of the same customer (frame is sorted).
    same = np.zeros(len(codes), dtype=bool)
    same[1:] = codes[1:] == codes[:-1]
    gaps = np.zeros(len(codes), dtype="float64")
    gaps[1:] = (age[:-1] - age[1:]).astype("float64")
    n_gaps = count - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_sum = np.bincount(codes, weights=np.where(same, gaps, 0.0), minlength=n_customers)
        ipt_mean = np.where(n_gaps >= 1, gap_sum / n_gaps, np.nan)
        dev = np.where(same, gaps - ipt_mean[codes], 0.0)
        ipt_var = np.bincount(codes, weights=dev * dev, minlength=n_customers) / n_gaps
        ipt_std = np.where(n_gaps >= 2, np.sqrt(ipt_var), np.nan)
    columns["ipt_mean_days"] = ipt_mean
    columns["ipt_std_days"] = ipt_std

    n_last = np.bincount(codes, weights=age < trend_days, minlength=n_customers)
    n_prev = np.bincount(codes, weights=(age >= trend_days) & (age < 2 * trend_days), minlength=n_customers)
    both = n_last + n_prev
    with np.errstate(divide="ignore", invalid="ignore"):
        columns[f"trend_{trend_days}d"] = np.where(both > 0, (n_last - n_prev) / both, 0.0)

    return pd.DataFrame(columns, index=index)
