"""Merge purchases per period (the BTYD convention).

All purchases by one customer within one period (a calendar day for ``"D"``) count as a
single purchase whose amount is the sum of the amounts.

Returns policy: negative amounts are returns and are netted within the day, exactly: each
row counts as ``rint(amount * 10**d)`` whole units (``d`` = ``ColumnMap.amount_decimals``,
default 4), the day's units are summed in int64 and the day's amount is ``units / 10**d``
(:mod:`custscore.features.netting`, shared by every engine), so the outcome never depends
on row order or float rounding (``0.3, -0.1, -0.2`` nets to exactly 0 in any order). A
day whose net is negative (a return-only day) is not a purchase and is dropped: it neither
counts as a repeat purchase nor lowers spend, so a net-negative mean spend can never
reach Gamma-Gamma. A day netting to exactly 0 (a free item, or a purchase returned the
same day) stays a purchase with spend 0; Gamma-Gamma is fitted only on customers with a
positive mean repeat spend. Identical rows are not deduplicated: they are two items of
one purchase day (frequency is unaffected, spend adds up).

Optional columns (only when the transactions carry them, see features.io):
``discounted`` is 1 when one of the day's non-negative rows (purchases, not returns) has
``discount`` > 0, else 0; ``arrears`` is the largest ``arrears`` among the day's rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from custscore.config import ColumnMap
from custscore.errors import CustscoreError
from custscore.features.io import check_columns
from custscore.features.netting import checked_units, units_amount

#: Periods :func:`merge_periods` supports.
SUPPORTED_PERIODS = ("D",)

#: Columns of a merged purchases frame, in order.
PURCHASE_COLUMNS = ("customer_id", "date", "amount")
#: Optional per-day columns (after PURCHASE_COLUMNS), present when the transactions carry
#: ``discount`` / ``arrears`` respectively.
DISCOUNTED, ARREARS = "discounted", "arrears"


def _require_columns(frame: pd.DataFrame, needed: tuple[str, ...], what: str) -> None:
    check_columns(frame.columns, needed, what, unique=False)


def merge_periods(tx: pd.DataFrame, period: str = "D",
                  amount_decimals: int = ColumnMap.amount_decimals) -> pd.DataFrame:
    """One row per (customer, period) with the exactly netted amount; return-only periods dropped.

    ``tx`` is a normalised frame (``customer_id``, ``ts``, ``amount``). Returns a new
    frame with columns ``customer_id``, ``date`` (``datetime64[ns]``, the period start:
    ``ts`` floored to the day) and ``amount`` (float64: the day's int64 sum of units of
    ``10**-amount_decimals``, divided back; module doc), sorted by customer then date;
    then ``discounted`` (int64 0/1) and ``arrears`` (float64 max) when ``tx`` has
    ``discount`` / ``arrears`` (module doc).

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
    amounts = tx["amount"].astype("float64").to_numpy()
    keys = pd.DataFrame(
        {
            "customer_id": tx["customer_id"].to_numpy(),
            "date": tx["ts"].dt.floor("D").astype("datetime64[ns]").to_numpy(),
            "amount": checked_units(amounts, amount_decimals, "merge_periods"),
        }
    )
    groups = keys.groupby(["customer_id", "date"], sort=True, observed=True)
    out = groups["amount"].sum().reset_index()  # int64: exact, whatever the row order
    extras = _optional_day_columns(tx, keys)
    if extras is not None:
        out = out.join(extras.groupby(["customer_id", "date"], sort=True, observed=True).max()
                       .reset_index(drop=True))
    out = out[out["amount"].to_numpy() >= 0].reset_index(drop=True)  # return-only days are not purchases
    out["date"] = out["date"].astype("datetime64[ns]")
    out["amount"] = units_amount(out["amount"].to_numpy(dtype=np.int64), amount_decimals)
    return out


def _optional_day_columns(tx: pd.DataFrame, keys: pd.DataFrame):
    """Per-row ``discounted`` (0/1) / ``arrears`` with the day keys, or None without those columns."""
    columns = {}
    if "discount" in tx.columns:
        on_discount = (tx["discount"].to_numpy(dtype="float64") > 0) & (tx["amount"].to_numpy(dtype="float64") >= 0)
        columns[DISCOUNTED] = on_discount.astype("int64")
    if "arrears" in tx.columns:
        columns[ARREARS] = tx["arrears"].to_numpy(dtype="float64")
    if not columns:
        return None
    return pd.DataFrame({"customer_id": keys["customer_id"].to_numpy(), "date": keys["date"].to_numpy(), **columns})
