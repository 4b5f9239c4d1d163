"""Merge purchases per period (the BTYD convention).

All purchases by one customer within one period (a calendar day for ``"D"``) count as a
single purchase whose amount is the sum of the amounts, so returns (negative amounts)
are netted within the day. A day with a net amount <= 0 still counts as a purchase
period here.
"""
from __future__ import annotations

import pandas as pd

from custscore.errors import CustscoreError

#: Periods :func:`merge_periods` supports.
SUPPORTED_PERIODS = ("D",)

#: Columns of a merged purchases frame, in order.
PURCHASE_COLUMNS = ("customer_id", "date", "amount")


def _require_columns(frame: pd.DataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise CustscoreError(f"{what}: missing column(s) {missing}; columns found: {[str(c) for c in frame.columns]}")


def merge_periods(tx: pd.DataFrame, period: str = "D") -> pd.DataFrame:
    """One row per (customer, period) with the summed amount.

    ``tx`` is a normalised frame (``customer_id``, ``ts``, ``amount``). Returns a new
    frame with columns ``customer_id``, ``date`` (``datetime64[ns]``, the period start:
    ``ts`` floored to the day) and ``amount`` (float64 sum), sorted by customer then date.

    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a"],
    ...                    "ts": pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-03 08:00"]),
    ...                    "amount": [1.0, 2.0, 5.0]})
    >>> out = merge_periods(tx)
    >>> out["date"].dt.strftime("%Y-%m-%d").tolist(), out["amount"].tolist()
    (['2020-01-01', '2020-01-03'], [3.0, 5.0])
    """
    if period not in SUPPORTED_PERIODS:
        raise CustscoreError(f"period: must be one of {list(SUPPORTED_PERIODS)}, got {period!r}")
    _require_columns(tx, ("customer_id", "ts", "amount"), "merge_periods")
    keys = pd.DataFrame(
        {
            "customer_id": tx["customer_id"].to_numpy(),
            "date": tx["ts"].dt.floor("D").astype("datetime64[ns]").to_numpy(),
            "amount": tx["amount"].astype("float64").to_numpy(),
        }
    )
    out = keys.groupby(["customer_id", "date"], sort=True, observed=True)["amount"].sum().reset_index()
    out["date"] = out["date"].astype("datetime64[ns]")
    out["amount"] = out["amount"].astype("float64")
    return out
