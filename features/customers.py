"""Per-customer features at a date, behind one engine interface.

Every engine (pandas here; DuckDB or Spark for large logs) answers the same four
questions about a per-period purchase log, with identical columns, index and values:

- ``date_range()``: first and last purchase day;
- ``customer_features(as_of, time_unit)``: RFM summary (durations in ``time_unit``)
  joined with the activity features (days) and the calendar-month counts
  (:mod:`custscore.features.months`), index ``customer_id`` sorted, every customer
  whose first purchase is on or before ``as_of``; then ``discount_share`` / ``arrears``
  only when the log has the optional columns (:mod:`custscore.features.discount_credit`);
- ``window_purchases(start, end)``: purchase periods and spend with start < date <= end;
- ``example_transactions(n_customers)``: a few customers' raw rows (customer_id, date
  as ISO string, amount), used as the MLflow input example.

The models downstream only ever see these frames.
"""
from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from custscore.config import ColumnMap, parse_date
from custscore.features.activity import TREND_DAYS, WINDOWS_DAYS, activity_arrays
from custscore.features.discount_credit import discount_credit_arrays, optional_columns
from custscore.features.months import month_count_arrays
from custscore.features.periods import merge_periods
from custscore.features.rfm import duration_columns, rfm_arrays, rfm_summary, window_purchases
from custscore.features.runs import purchase_runs


def customer_features(purchases: pd.DataFrame, as_of: Any, time_unit: str = "D") -> pd.DataFrame:
    """RFM summary (durations in ``time_unit``), activity features (days) and calendar-month counts.

    ``purchases`` is per-period (output of ``merge_periods``); purchases after ``as_of``
    (inclusive day) are ignored. Index ``customer_id``: every customer whose first
    purchase is on or before ``as_of``, sorted. When ``purchases`` carries ``discounted``
    / ``arrears``, the columns ``discount_share`` / ``arrears`` follow; otherwise none.

    The purchases are checked and grouped once (:func:`~custscore.features.runs.purchase_runs`,
    errors named as :func:`~custscore.features.rfm.rfm_summary`'s); the columns are those of
    ``rfm_summary``, ``activity_features`` (default windows), ``calendar_month_counts`` and
    ``discount_credit_features``, in that order.
    """
    duration_columns(time_unit)  # an unknown unit is refused before any work
    runs = purchase_runs(purchases, "rfm_summary", parse_date(as_of, "cutoff"), extra=optional_columns(purchases))
    parts = (rfm_arrays(runs, time_unit), activity_arrays(runs, WINDOWS_DAYS, TREND_DAYS),
             month_count_arrays(runs), discount_credit_arrays(runs))
    if runs.index.hasnans:  # missing ids are not one customer: keep the joins' many-to-many rows
        frames = [pd.DataFrame(part, index=runs.index) for part in parts if part]
        out = frames[0]
        for frame in frames[1:]:
            out = out.join(frame, how="left")
        return out
    columns = {name: values for part in parts for name, values in part.items()}
    return pd.DataFrame(columns, index=runs.index, copy=False)  # fresh arrays: no copy into blocks


class FeatureEngine(Protocol):
    """What training, evaluation and batch scoring need from a purchase log."""

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]: ...

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame: ...

    def window_purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame: ...

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame: ...


class PandasEngine:
    """The in-memory engine: a normalised transaction frame merged per day once (netted at
    ``amount_decimals``, :func:`~custscore.features.periods.merge_periods`)."""

    def __init__(self, transactions: pd.DataFrame, amount_decimals: int = ColumnMap.amount_decimals) -> None:
        self.transactions = transactions
        self.purchases = merge_periods(transactions, amount_decimals=amount_decimals)

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        dates = self.purchases["date"]
        return dates.min(), dates.max()

    def customer_features(self, as_of: pd.Timestamp, time_unit: str) -> pd.DataFrame:
        return customer_features(self.purchases, as_of, time_unit)

    def window_purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return window_purchases(self.purchases, start, end)

    def rfm_summary(self, cutoff: pd.Timestamp, time_unit: str = "D") -> pd.DataFrame:
        """The BTYD summary alone (:func:`custscore.features.rfm.rfm_summary`)."""
        return rfm_summary(self.purchases, cutoff, time_unit)

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        tx = self.transactions
        ids = tx["customer_id"].drop_duplicates().head(n_customers)
        rows = tx[tx["customer_id"].isin(ids)]
        return pd.DataFrame({
            "customer_id": rows["customer_id"].astype(str).to_numpy(),
            "date": rows["ts"].dt.strftime("%Y-%m-%d").to_numpy(),
            "amount": rows["amount"].astype(float).to_numpy(),
        })
