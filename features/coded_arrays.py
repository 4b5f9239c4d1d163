"""Coded per-day purchases held in numpy arrays: the in-memory back end of the DuckDB engine.

The DuckDB engine's in-memory mode (DuckDB reads, checks and merges the log, then hands over
the sorted per-day rows once) ends with these arrays: one row per customer and purchase day, sorted by
customer code, then day, where codes 0..n-1 follow ``customer_id`` order. :class:`CodedArrays`
answers every feature question from them: the BTYD summary straight from the arrays
(:func:`custscore.features.rfm.btyd_from_runs`, the pandas engine's own sums), the other
features by slicing code ranges for the shared chunked functions
(:class:`~custscore.features.coded_engine.CodedPurchasesEngine`).

Memory: 16 bytes per purchase day (int32 code, int32 day, float64 amount), plus the
optional per-day columns (8 bytes each) and the customer ids.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custscore.config import DAYS_PER_UNIT, parse_date
from custscore.features.coded_engine import CodedPurchasesEngine
from custscore.features.days import day_dates, day_number_of
from custscore.features.lookup import index_positions
from custscore.features.netting import day_units, units_amount
from custscore.features.rfm import btyd_from_runs, duration_columns, rfm_frame, run_numbers
from custscore.features.runs import arrow_id_changes, code_changes
from custscore.threads import all_blocks, for_each_block


class CodedArrays(CodedPurchasesEngine):
    """Feature answers from coded per-day purchase arrays (module doc).

    ``ids``: the customer ids by code (every customer of the log, also those with return-only
    days); ``code`` (int32), ``day`` (int32, days since 1970-01-01), ``amount`` (float64): one
    row per purchase day, sorted by (code, day); ``per_day``: optional per-day columns
    (``discounted`` int64, ``arrears`` float64) aligned with them; ``rows_per_chunk`` bounds
    the purchase rows handed to the pandas feature functions at once.
    """

    def __init__(self, ids: pd.Index, code: np.ndarray, day: np.ndarray, amount: np.ndarray,
                 per_day: Optional[Mapping[str, np.ndarray]] = None, rows_per_chunk: int = 4_000_000) -> None:
        self.rows_per_chunk = rows_per_chunk
        self._ids = ids
        self._code, self._day, self._amount = code, day, amount
        self._per_day = dict(per_day or {})
        # The codes are sorted: the rows before code k start where k would be inserted.
        self._rows_before = np.searchsorted(code, np.arange(len(ids) + 1, dtype=code.dtype))

    def _purchases(self, lo: int, hi: int, after: Optional[pd.Timestamp], until: pd.Timestamp) -> pd.DataFrame:
        """Per-day purchases of codes in [lo, hi) with after < date <= until; ``customer_id`` = code."""
        rows = slice(int(self._rows_before[lo]), int(self._rows_before[hi]))
        day = self._day[rows]
        keep = day <= day_number_of(until)
        if after is not None:
            keep &= day > day_number_of(after)
        return pd.DataFrame({"customer_id": self._code[rows][keep].astype(np.int64), "date": day_dates(day[keep]),
                             "amount": self._amount[rows][keep],
                             **{name: values[rows][keep] for name, values in self._per_day.items()}})

    def customer_features_of(self, customers: pd.Index, as_of: Any, time_unit: str) -> pd.DataFrame:
        """:meth:`customer_features` of the customers in ``customers`` only (ids; unknown ones ignored):
        the rows of the full frame, from their purchases alone (a customer's features are his own)."""
        codes = np.flatnonzero(index_positions(customers, self._ids) >= 0)
        before = self._rows_before
        code, take = group_rows(before[codes], before[codes + 1] - before[codes])
        part = CodedArrays(self._ids.take(codes), code, self._day[take], self._amount[take],
                           {name: values[take] for name, values in self._per_day.items()}, self.rows_per_chunk)
        return part.customer_features(as_of, time_unit)

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last purchase day (NaT, NaT without any purchase day)."""
        if not len(self._day):
            return pd.NaT, pd.NaT
        return pd.Timestamp(day_dates(self._day.min())), pd.Timestamp(day_dates(self._day.max()))

    def rfm_summary(self, cutoff: Any, time_unit: str = "D") -> pd.DataFrame:
        """:func:`custscore.features.rfm.rfm_summary` of the whole log, from the coded arrays (no chunks).

        Same frame, bit for bit: index ``customer_id`` (sorted), ``frequency``,
        ``recency_<unit>``, ``T_<unit>``, ``monetary_value``, ``first_purchase``,
        ``last_purchase``; durations in ``time_unit`` (days, or days / 7 for weeks).
        """
        cutoff = parse_date(cutoff, "cutoff")
        duration_columns(time_unit)  # an unknown unit is refused before any work
        code, day, amount = self._code, self._day, self._amount
        keep = day <= day_number_of(cutoff)
        if not keep.all():
            code, day, amount = code[keep], day[keep], amount[keep]
        starts = np.flatnonzero(code_changes(code))
        # The codes are the runs when every customer is present (first purchase before the cutoff).
        runs = code if len(starts) == len(self._ids) else run_numbers(starts, len(code))
        out = btyd_from_runs(runs, starts, day, amount, float(day_number_of(cutoff)), DAYS_PER_UNIT[time_unit])
        return rfm_frame(out, day_dates(day[starts]), day_dates(day[out["last_row"]]), self._ids.take(code[starts]),
                         time_unit)


def id_runs(ids: "pa.Array | pa.ChunkedArray") -> tuple[pa.Array, np.ndarray]:
    """(the first id of each run of equal consecutive ids, the row where each run starts).

    For ids sorted by id, the runs are the customers: codes from run boundaries, no hashing.

    >>> heads, starts = id_runs(pa.chunked_array([["a", "a"], ["b", "c", "c"]]))
    >>> heads.to_pylist(), starts.tolist()
    (['a', 'b', 'c'], [0, 2, 3])
    """
    change = arrow_id_changes(ids)
    heads = ids.filter(pa.array(change))
    return (heads.combine_chunks() if isinstance(heads, pa.ChunkedArray) else heads), np.flatnonzero(change)


def grouped_days(ids: "pa.Array | pa.ChunkedArray", day: np.ndarray, units: np.ndarray, decimals: int,
                 maxima: Optional[Mapping[str, np.ndarray]] = None
                 ) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(customer ids in id order, then :func:`merged_days`' code, day, amount and ``maxima``) of
    transaction rows grouped by customer: each customer's rows together (fastest with the days
    increasing), the customers in any order (a database sorts by a hash of the id and the day much
    faster than by a text id: benchmarks/ORDERS_RESULTS.md run 24).

    The days are merged group by group (no sort), then the groups are put in id order, a gather
    (none if they are in id order already). If a customer's rows come in more than one group (two
    ids sharing a hash, interleaved on a day; a file not grouped after all), the rows are coded by
    id and sorted instead (:func:`merged_days`), so the result is the same either way.

    >>> ids, c, d, a, _ = grouped_days(pa.array(["b", "b", "a"]), np.array([5, 6, 7]), np.array([10, 20, 30]), 1)
    >>> ids.tolist(), c.tolist(), d.tolist(), a.tolist()
    (['a', 'b'], [0, 1, 1], [7, 5, 6], [3.0, 1.0, 2.0])
    """
    heads, starts = id_runs(ids)
    runs = run_numbers(starts, len(day))
    if len(heads) < 2 or pc.all(pc.less(heads.slice(0, len(heads) - 1), heads.slice(1))).as_py():
        code, day, amount, maxima = merged_days(runs, day, units, decimals, maxima)  # in id order already
        return pd.Index(heads.to_pandas(), name="customer_id"), code, day, amount, maxima
    order = pc.sort_indices(heads)
    ordered = heads.take(order)
    repeated = np.zeros(len(ordered), dtype=bool)
    repeated[1:] = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1)).to_numpy(zero_copy_only=False)
    if repeated.any():
        distinct = ordered.filter(pa.array(~repeated))
        run_code = pc.index_in(heads, value_set=distinct).to_numpy().astype(np.int32)
        code, day, amount, maxima = merged_days(run_code[runs], day, units, decimals, maxima)
        return pd.Index(distinct.to_pandas(), name="customer_id"), code, day, amount, maxima
    run, day, amount, maxima = merged_days(runs, day, units, decimals, maxima)
    order = order.to_numpy()
    bounds = np.searchsorted(run, np.arange(len(order) + 1, dtype=run.dtype))
    code, take = group_rows(bounds[:-1][order], np.diff(bounds)[order])
    return (pd.Index(ordered.to_pandas(), name="customer_id"), code, day[take], amount[take],
            {name: values[take] for name, values in maxima.items()})


def group_rows(firsts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(new code of each row, the rows to take) that put groups of rows one after another: group k
    is the ``lengths[k]`` rows from ``firsts[k]`` and gets code k (int32).

    >>> code, take = group_rows(np.array([3, 0]), np.array([2, 1]))
    >>> code.tolist(), take.tolist()
    ([0, 0, 1], [3, 4, 0])
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    take = np.repeat(np.asarray(firsts, dtype=np.int64) - (np.cumsum(lengths) - lengths), lengths)
    take += np.arange(len(take))
    return np.repeat(np.arange(len(lengths), dtype=np.int32), lengths), take


def merged_days(code: np.ndarray, day: np.ndarray, units: np.ndarray, decimals: int,
                maxima: Optional[Mapping[str, np.ndarray]] = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(code, day, amount, per-day ``maxima``) of each purchase day, sorted by code then day;
    return-only days dropped. Inputs: one row per transaction (any order), ``units`` its int64
    netting units at ``decimals``, ``maxima`` per-row columns whose per-day value is their largest.

    Days are netted exactly (:mod:`custscore.features.netting`): each row's int64 units,
    summed per day, the day kept when its units are >= 0, its amount the units divided
    back, as :func:`~custscore.features.periods.merge_periods` nets them. Rows are sorted
    only if they are not in (code, day) order already; the passes over all rows run in
    cache-sized blocks on all cores.

    >>> c, d, a, m = merged_days(np.array([0, 0, 1]), np.array([5, 5, 7]), np.array([150, -50, -1]), 2,
    ...                          {"arrears": np.array([1.0, 3.0, 2.0])})
    >>> c.tolist(), d.tolist(), a.tolist(), m["arrears"].tolist()
    ([0], [5], [1.0], [3.0])
    """
    maxima = dict(maxima or {})
    in_order, later_rows = _continued_days(code, day)
    if not in_order:
        first_day = int(day.min())
        key = code.astype(np.int64)
        key *= int(day.max()) - first_day + 1
        key += day - first_day
        order = np.argsort(key, kind="stable")
        del key
        code, day, units = code[order], day[order], units[order]
        maxima = {name: values[order] for name, values in maxima.items()}
        _, later_rows = _continued_days(code, day)
    if len(later_rows):
        day_code, day_day = _without_rows((code, day), later_rows)
        first_rows = np.ones(len(code), dtype=bool)
        first_rows[later_rows] = False
        starts = np.flatnonzero(first_rows)
        units = day_units(units, starts)
        maxima = {name: np.maximum.reduceat(values, starts) for name, values in maxima.items()}
    else:
        day_code, day_day = code, day
    if not all_blocks(lambda rows: units[rows] >= 0, len(units)):
        keep = units >= 0
        day_code, day_day, units = day_code[keep], day_day[keep], units[keep]
        maxima = {name: values[keep] for name, values in maxima.items()}
    return day_code, day_day, units_amount(units, decimals), maxima


def _continued_days(code: np.ndarray, day: np.ndarray) -> tuple[bool, np.ndarray]:
    """(rows sorted by (code, day)?, the rows that continue the day of the row before them, sorted)."""
    n = len(code)

    def block(rows: slice) -> tuple[bool, np.ndarray]:
        lo, hi = max(rows.start, 1), min(rows.stop, n)
        if lo >= hi:
            return True, np.zeros(0, dtype=np.int64)
        c1, c0, d1, d0 = code[lo:hi], code[lo - 1:hi - 1], day[lo:hi], day[lo - 1:hi - 1]
        same = c1 == c0
        ordered = bool(((c1 > c0) | (same & (d1 >= d0))).all())
        return ordered, np.flatnonzero(same & (d1 == d0)) + lo

    parts = for_each_block(block, n)
    return all(p[0] for p in parts), np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)


def _without_rows(arrays: tuple[np.ndarray, ...], dropped: np.ndarray) -> list[np.ndarray]:
    """Copies of ``arrays`` without the rows ``dropped`` (sorted, unique), built block by block."""
    n = len(arrays[0])
    out = [np.empty(n - len(dropped), dtype=a.dtype) for a in arrays]

    def block(rows: slice) -> None:
        lo, hi = rows.start, min(rows.stop, n)
        first, last = np.searchsorted(dropped, (lo, hi))
        keep = np.ones(hi - lo, dtype=bool)
        keep[dropped[first:last] - lo] = False
        at = lo - first  # rows kept before this block
        for source, target in zip(arrays, out):
            target[at:at + (hi - lo) - (last - first)] = source[lo:hi][keep]

    for_each_block(block, n)
    return out
