"""Checked per-day purchases as per-customer runs: the one check the feature functions share.

The feature functions (:mod:`~custscore.features.rfm`, :mod:`~custscore.features.activity`,
:mod:`~custscore.features.months`, :mod:`~custscore.features.discount_credit`) read the
output of :func:`custscore.features.periods.merge_periods`: one row per customer and day,
sorted by customer, then date. :func:`purchase_runs` checks that once (sorting a copy when
needed), keeps the rows of a date range and finds where each customer's rows (a "run")
start, so :func:`custscore.features.customers.customer_features` checks each chunk once
instead of once per feature family. Grouping by contiguous runs instead of hashing the
ids is what makes the features fast; sums run in row order, so every engine gets the
same bits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.errors import CustscoreError
from custscore.features.days import day_numbers
from custscore.features.periods import PURCHASE_COLUMNS, _require_columns

#: Rows up to which customer ids are compared as Python objects (see _new_customer).
_SMALL_COLUMN = 10_000


@dataclass(frozen=True)
class PurchaseRuns:
    """Checked purchases with ``after < date <= until``, sorted by customer, then date.

    Per customer (``n`` of them, in ``index`` order): ``starts`` (first row), ``count``
    (purchase days) and ``last_row`` (the latest purchase day's row), all int64. Per row:
    ``codes`` (int64 customer number 0..n-1), ``dates`` (``datetime64[ns]``), ``day``
    (int32 whole days since 1970-01-01, time of day dropped; every ``datetime64[ns]`` date
    fits), ``amount`` (float64) and the optional columns of ``extra`` (float64).
    """

    index: pd.Index
    starts: np.ndarray
    count: np.ndarray
    last_row: np.ndarray
    codes: np.ndarray
    dates: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    extra: dict[str, np.ndarray]
    until: pd.Timestamp

    def count_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows where the boolean ``rows`` is True, per customer (int64)."""
        # the runs tile the rows: a customer's count is the running count at its last row
        # minus the one at the previous customer's (int32 running counts: half the memory)
        running = np.cumsum(rows, dtype=np.int32 if len(rows) < 2**31 else np.int64)
        return np.diff(running[self.last_row], prepend=0).astype(np.int64)

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """Per-customer sums of a per-row float array, added up in row order (float64; int64
        zeros without rows, as :func:`numpy.bincount` gives)."""
        return np.bincount(self.codes, weights=weights, minlength=len(self.starts))

    def sums_where(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``sums(values * rows)`` for finite ``values``, adding up only the rows where ``rows`` is True.

        The same bits: the rows left out would add 0.0 to a sum that starts at +0.0.
        """
        chosen = np.flatnonzero(rows)
        if not len(chosen):
            return self.sums(np.zeros(len(self.codes)))
        return np.bincount(self.codes[chosen], weights=values[chosen], minlength=len(self.starts))


def purchase_runs(purchases: pd.DataFrame, what: str, until: pd.Timestamp,
                  after: Optional[pd.Timestamp] = None, extra: tuple[str, ...] = ()) -> PurchaseRuns:
    """The rows of ``purchases`` with ``after < date <= until`` (``after`` None: no lower bound) as runs.

    Checks, on the whole frame, that :data:`PURCHASE_COLUMNS` and ``extra`` are present
    and that there is one row per (customer, date); errors start with ``what``. A frame
    not sorted by customer, then date, is sorted (a copy; ``purchases`` is not modified).
    """
    _require_columns(purchases, PURCHASE_COLUMNS + tuple(extra), what)
    frame, dates, change = _sorted_frame(purchases, what, extra)
    amount = frame["amount"].to_numpy(dtype="float64")
    columns = {c: frame[c].to_numpy(dtype="float64") for c in extra}
    keep = dates <= until.to_datetime64()
    if after is not None:
        keep &= dates > after.to_datetime64()
    if keep.all():
        first_rows = starts = np.flatnonzero(change)
    else:
        # kept rows of one customer are contiguous (dates rise): a run starts at its first kept row
        first_kept = keep.copy()
        first_kept[1:] &= change[1:] | ~keep[:-1]
        first_rows = np.flatnonzero(first_kept)
        starts = np.flatnonzero(first_kept[keep])
        dates, amount = dates[keep], amount[keep]
        columns = {c: values[keep] for c, values in columns.items()}
    count = np.diff(starts, append=len(dates)).astype(np.int64)
    return PurchaseRuns(
        index=pd.Index(frame["customer_id"].iloc[first_rows], name="customer_id"),
        starts=starts, count=count, last_row=starts + count - 1,
        codes=np.repeat(np.arange(len(starts), dtype=np.int64), count),
        dates=dates, day=day_numbers(dates).astype(np.int32), amount=amount, extra=columns, until=until,
    )


def _sorted_frame(purchases: pd.DataFrame, what: str, extra: tuple[str, ...]
                  ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``purchases`` (or a sorted copy), its dates (``datetime64[ns]``) and :func:`_new_customer`;
    refused when a customer has two rows on one date."""
    dates = purchases["date"].to_numpy(dtype="datetime64[ns]")
    change = _new_customer(purchases["customer_id"]) if _ids_sorted(purchases["customer_id"]) else None
    if change is not None and _rising_within(dates, change, strictly=True):
        return purchases, dates, change  # merge_periods output: already sorted, one row per day
    frame = purchases
    if change is None or not _rising_within(dates, change, strictly=False):
        frame = purchases.loc[:, list(PURCHASE_COLUMNS) + list(extra)]
        frame = frame.sort_values(["customer_id", "date"], kind="stable")
        dates = frame["date"].to_numpy(dtype="datetime64[ns]")
        change = _new_customer(frame["customer_id"])
    if (~change[1:] & (dates[1:] == dates[:-1])).any():
        raise CustscoreError(f"{what}: purchases must have one row per customer and day (use merge_periods first)")
    return frame, dates, change


def _rising_within(dates: np.ndarray, change: np.ndarray, strictly: bool) -> bool:
    """True when ``dates`` rise (``strictly``: and never repeat) within each customer's rows."""
    rising = dates[1:] > dates[:-1] if strictly else dates[1:] >= dates[:-1]
    return bool((rising | change[1:]).all())


def _arrow_strings(customers: pd.Series) -> Optional[pa.ChunkedArray]:
    """The Arrow array of a pyarrow-backed string column, else None."""
    dtype = customers.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pa.chunked_array(pa.array(customers.array))
    return None


def _ids_sorted(customers: pd.Series) -> bool:
    """True when the ids never decrease (and none is missing), compared in their own engine."""
    if isinstance(customers.dtype, np.dtype) and customers.dtype.kind in "iu":
        values = customers.to_numpy()
        return bool((values[1:] >= values[:-1]).all())
    arrow = _arrow_strings(customers) if len(customers) > _SMALL_COLUMN else None
    if arrow is not None:  # UTF-8 byte order is code point order, as pandas compares str
        return arrow.null_count == 0 and bool(pc.all(pc.greater_equal(arrow[1:], arrow[:-1]), min_count=0).as_py())
    return bool(customers.is_monotonic_increasing)


def code_changes(codes: np.ndarray) -> np.ndarray:
    """Boolean per row of integer codes: True at row 0 and where the code differs from the row before.

    >>> code_changes(np.array([3, 3, 5])).tolist()
    [True, False, True]
    """
    change = np.ones(len(codes), dtype=bool)
    np.not_equal(codes[1:], codes[:-1], out=change[1:])
    return change


def arrow_id_changes(ids: "pa.Array | pa.ChunkedArray") -> np.ndarray:
    """Boolean per row of an Arrow id column: True at row 0 and where the id differs from the row
    before (a missing id starts a new customer).

    >>> arrow_id_changes(pa.chunked_array([["a", "a"], ["b", None]])).tolist()
    [True, False, True, True]
    """
    change = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        change[1:] = pc.fill_null(pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)), True).to_numpy(
            zero_copy_only=False)
    return change


def _new_customer(customers: pd.Series) -> np.ndarray:
    """Boolean per row: True where the id differs from the previous row (and at row 0).

    Stays in the column's own engine (numpy for integer codes, Arrow for pandas' str
    dtype) instead of materialising millions of Python strings; short columns (e.g. one
    HTTP request) compare as Python objects, which skips the engine's fixed cost. A
    missing id starts a new customer.
    """
    if isinstance(customers.dtype, np.dtype) and customers.dtype.kind in "iu":
        return code_changes(customers.to_numpy())
    change = np.ones(len(customers), dtype=bool)
    if len(customers) <= _SMALL_COLUMN and not customers.hasnans:
        values = customers.to_numpy(dtype=object)
        change[1:] = values[1:] != values[:-1]
        return change
    arrow = _arrow_strings(customers)
    if arrow is not None:
        return arrow_id_changes(arrow)
    change = customers.ne(customers.shift()).to_numpy(dtype=bool, na_value=True, copy=True)
    if len(change):
        change[0] = True
    return change
