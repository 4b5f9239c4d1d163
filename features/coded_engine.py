"""Feature engines over per-day purchases whose customers are coded 0..n-1 in id order.

The DuckDB engine (in memory and out of core) reduces a log to one purchase row per customer and day
with an integer customer code (codes follow ``customer_id`` order). This base class
answers the :class:`~custscore.features.customers.FeatureEngine` questions from such a
table chunk by chunk (contiguous code ranges of at most ``rows_per_chunk`` purchase
rows), through the *same* pure functions the pandas engine uses
(:func:`custscore.features.customers.customer_features`,
:func:`custscore.features.rfm.window_purchases`), so every engine agrees to the last digit
by construction. A subclass sets ``_ids`` (customer ids by code), ``_rows_before`` (rows
with a code below k, for k = 0..n) and implements :meth:`_purchases` and :meth:`_example_rows`.
The in-memory subclass is :class:`custscore.features.coded_arrays.CodedArrays`.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd

from custscore.config import parse_date
from custscore.features.customers import customer_features
from custscore.features.lookup import rows_in
from custscore.features.rfm import window_purchases


class CodedPurchasesEngine:
    """Chunked feature answers over coded per-day purchases (see the module doc)."""

    _ids: pd.Index
    _rows_before: np.ndarray
    rows_per_chunk: int

    def _purchases(self, lo: int, hi: int, after: Optional[pd.Timestamp], until: pd.Timestamp) -> pd.DataFrame:
        """Per-day purchases of codes in [lo, hi) with after < date <= until; ``customer_id`` = code."""
        raise NotImplementedError

    def _example_rows(self) -> pd.DataFrame:
        """Raw rows (customer_id, ISO date, amount) of the first customers by id (at most 10), in
        (id, time, row) order."""
        raise NotImplementedError

    def example_transactions(self, n_customers: int = 3) -> pd.DataFrame:
        """Raw rows (customer_id, ISO date, amount) of the first ``n_customers`` customers by id (at most 10)."""
        rows = self._example_rows()
        first = rows["customer_id"].drop_duplicates().head(int(n_customers))
        return rows[rows["customer_id"].isin(first)].reset_index(drop=True)

    def _code_ranges(self) -> list[tuple[int, int]]:
        """Contiguous customer-code ranges of at most ``rows_per_chunk`` purchase rows (>= 1 customer)."""
        n = len(self._ids)
        bounds, start = [], 0
        while start < n or not bounds:
            limit = self._rows_before[start] + self.rows_per_chunk
            stop = max(int(np.searchsorted(self._rows_before, limit, side="right")) - 1, start + 1)
            stop = min(stop, n)
            bounds.append((start, stop))
            start = stop
        return bounds

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Replace the integer customer codes of the index by the customer ids."""
        out = frame.copy(deep=False)
        out.index = self._ids.take(frame.index.to_numpy(dtype=np.int64))
        return out

    def iter_customer_features(self, as_of: Any, time_unit: str) -> Iterator[pd.DataFrame]:
        """:meth:`customer_features` in chunks of consecutive customers (sorted by id)."""
        as_of = parse_date(as_of, "as_of")
        for lo, hi in self._code_ranges():
            yield self._labelled(customer_features(self._purchases(lo, hi, None, as_of), as_of, time_unit))

    def customer_features(self, as_of: Any, time_unit: str) -> pd.DataFrame:
        """RFM (durations in ``time_unit``) + activity features (days); see features.customers."""
        return pd.concat(list(self.iter_customer_features(as_of, time_unit)))

    def customer_features_of(self, customers: pd.Index, as_of: Any, time_unit: str) -> pd.DataFrame:
        """:meth:`customer_features` of the customers in ``customers`` only (ids; unknown ones ignored), in
        id order. Here the full frame, cut; the in-memory arrays compute only those customers'."""
        return rows_in(self.customer_features(as_of, time_unit), customers)

    def window_purchases(self, start: Any, end: Any) -> pd.DataFrame:
        """Purchase days and spend per customer with start < date <= end (see features.rfm)."""
        start, end = parse_date(start, "start"), parse_date(end, "end")
        parts = [self._labelled(window_purchases(self._purchases(lo, hi, start, end), start, end))
                 for lo, hi in self._code_ranges()]
        return pd.concat(parts)
