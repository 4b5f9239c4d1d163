"""The Arrow engine: a Parquet log read with pyarrow and merged per day in numpy, in memory.

For Parquet logs that fit in memory this is the fastest engine: one columnar read, the
customers coded in id order (from run boundaries when the file is sorted by customer,
else through an Arrow dictionary), one sort by (customer, day) unless the rows are
already in that order, and per-day sums netted exactly in int64 units as
:func:`~custscore.features.periods.merge_periods` nets them (the shared
:mod:`custscore.features.netting`), so the purchases, and every feature computed from
them, are bit-identical to the pandas engine's. The per-day merge and every answer from
the coded arrays are the in-memory back end it shares with the DuckDB engine
(:mod:`custscore.features.coded_arrays`): the BTYD summary straight from the arrays, the
other features through the shared chunked functions.
A database result arrives as Arrow batches and is read the same way (:func:`arrow_engine_of_table`).

What it reads: a Parquet file whose customer column is text or integers, date column a
timestamp (naive, or aware: the UTC day) or a date, amount column numbers, with no
missing or out-of-range value, no blank or blank-padded id, and no optional (discount,
arrears) columns. Anything else, including every kind of bad input, is left to the
DuckDB engine (:func:`open_arrow_engine` returns None), whose messages name the row and
value exactly as the pandas engine does.

Memory: the three columns in Arrow plus a few numbers per transaction while loading, then
16 bytes per purchase day (code, day, amount); the RFM summary of 10.6M transactions
peaked at 0.80 GB (benchmarks/RESULTS.md, run 5).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from custscore.config import NS_PER_DAY, ColumnMap
from custscore.errors import CustscoreError
from custscore.features.coded_arrays import CodedArrays, id_runs, merged_days
from custscore.features.io import (_TS_MAX, _TS_MIN, _suffix_kind, check_log_columns, log_column_names,
                                   optional_columns)
from custscore.features.netting import MAX_TOTAL_UNITS, amount_units, too_large
from custscore.features.rfm import run_numbers
from custscore.threads import all_blocks

_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@dataclass(frozen=True)
class ArrowSettings:
    """``rows_per_chunk`` bounds the purchase rows (customer-days) handed to the pandas
    feature functions at once (:class:`~custscore.features.coded_engine.CodedPurchasesEngine`)."""

    rows_per_chunk: int = 4_000_000

    def __post_init__(self) -> None:
        if isinstance(self.rows_per_chunk, bool) or not isinstance(self.rows_per_chunk, int) or self.rows_per_chunk <= 0:
            raise CustscoreError(f"rows_per_chunk: must be a whole number > 0, got {self.rows_per_chunk!r}")


@dataclass(frozen=True)
class _Log:
    """The validated raw columns: customer codes (id order, int32), UTC days since 1970 (int32),
    amounts (float64) and their netting units (int64, at ``decimals``), the timestamps as
    read (for the example rows) and the distinct ids."""

    ids: pa.Array
    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    units: np.ndarray
    ts: pa.ChunkedArray
    decimals: int


def open_arrow_engine(path: str | Path, columns: ColumnMap = ColumnMap(),
                      settings: ArrowSettings = ArrowSettings()) -> Optional["ArrowEngine"]:
    """An :class:`ArrowEngine` over the Parquet log at ``path``, or None when it must take another engine.

    None for CSV files, unsupported column types, optional columns, and any value the
    engine does not read (module doc): the caller then opens the DuckDB engine, which
    reads those or names the bad row.
    """
    path = Path(path)
    if not path.is_file() or _suffix_kind(path) != "parquet" or optional_columns(columns):
        return None
    log = _read_log(path, columns)
    return None if log is None else ArrowEngine(log, settings)


def arrow_engine_of_table(table: pa.Table, columns: ColumnMap = ColumnMap(),
                          settings: ArrowSettings = ArrowSettings()) -> Optional["ArrowEngine"]:
    """An :class:`ArrowEngine` over a log already in Arrow (e.g. a database result holding
    the columns ``columns`` names, checked), or None when another engine must read it
    (the same rules as :func:`open_arrow_engine`)."""
    if optional_columns(columns):
        return None
    names = list(log_column_names(columns))
    if not _readable_types(table.schema, names):
        return None
    log = _log_of_table(table.select(names), columns)
    return None if log is None else ArrowEngine(log, settings)


def _readable_types(schema: pa.Schema, names: list[str]) -> bool:
    """Whether the columns ``names`` (id, date, amount if any) have types the engine reads."""
    id_type, ts_type, *amount_type = (schema.field(c).type for c in names)
    return ((pa.types.is_string(id_type) or pa.types.is_large_string(id_type) or pa.types.is_integer(id_type))
            and (pa.types.is_timestamp(ts_type) or pa.types.is_date32(ts_type))
            and all(pa.types.is_floating(t) or pa.types.is_integer(t) for t in amount_type))


def _read_log(path: Path, columns: ColumnMap) -> Optional[_Log]:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None  # not readable as Parquet here: the other engine says why
    names = list(log_column_names(columns))
    check_log_columns(list(schema.names), columns, str(path), types=dict(zip(schema.names, schema.types)))
    if not _readable_types(schema, names):
        return None
    return _log_of_table(pq.read_table(path, columns=names, memory_map=True), columns)


def _log_of_table(table: pa.Table, columns: ColumnMap) -> Optional[_Log]:
    """The validated log of ``table`` (exactly the log columns, readable types), or None (module doc)."""
    if table.num_rows == 0 or any(table.column(i).null_count for i in range(table.num_columns)):
        return None
    ids, ts, *amounts = table.columns
    n_rows = table.num_rows
    del table
    day = _utc_days(ts)
    # a log without amounts (ColumnMap.amount None): every row 0.0
    amount = amounts[0].to_numpy().astype(np.float64, copy=False) if amounts else np.zeros(n_rows)
    del amounts
    decimals = columns.amount_decimals
    if day is None or not all_blocks(lambda rows: np.isfinite(amount[rows]) & ~too_large(amount[rows], decimals),
                                     len(amount)):
        return None
    units = amount_units(amount, decimals)
    if np.abs(units).sum(dtype=np.float64) > MAX_TOTAL_UNITS:
        return None  # DuckDB refuses it with features.netting's message
    coded = _customer_codes(ids)
    del ids
    if coded is None:
        return None
    unique_ids, code = coded
    return _Log(unique_ids, code, day, amount, units, ts, decimals)


def _utc_days(ts: pa.ChunkedArray) -> Optional[np.ndarray]:
    """Days since 1970-01-01 (the UTC day for aware timestamps) as int32, or None outside datetime64[ns]."""
    low, high = (v.value for v in pc.min_max(ts).values())  # the stored integers (UTC for aware columns)
    if pa.types.is_date32(ts.type):
        if low * NS_PER_DAY < _TS_MIN.value or high * NS_PER_DAY > _TS_MAX.value:
            return None
        return ts.cast(pa.int32()).to_numpy()
    per_ns = _NS_PER_UNIT[ts.type.unit]
    if low < _TS_MIN.value // per_ns or high > _TS_MAX.value // per_ns:
        return None
    if ts.type.tz is not None:  # drop the zone, keeping the stored UTC values: the day is the UTC day
        ts = ts.cast(pa.timestamp(ts.type.unit))
    return ts.cast(pa.date32()).cast(pa.int32()).to_numpy()


def _ts_ns(ts: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """The timestamps of ``rows`` (any order) as nanoseconds since 1970 (UTC), int64.

    Taken chunk by chunk: ``ChunkedArray.take`` costs tens of milliseconds per call
    whatever the number of rows.
    """
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    bounds = np.cumsum([0] + [len(chunk) for chunk in ts.chunks])
    cuts = np.searchsorted(ordered, bounds)
    parts = [ts.chunk(i).take(pa.array(ordered[cuts[i]:cuts[i + 1]] - bounds[i]))
             for i in range(ts.num_chunks) if cuts[i + 1] > cuts[i]]
    picked = pa.chunked_array(parts, type=ts.type)
    if pa.types.is_date32(ts.type):
        values = picked.cast(pa.int32()).to_numpy().astype(np.int64) * NS_PER_DAY
    else:
        values = picked.cast(pa.int64()).to_numpy() * _NS_PER_UNIT[ts.type.unit]
    out = np.empty(len(rows), dtype=np.int64)
    out[order] = values
    return out


def _customer_codes(ids: pa.ChunkedArray) -> Optional[tuple[pa.Array, np.ndarray]]:
    """(distinct ids as text in sorted order, each row's int32 code into them), or None for ids to refuse.

    Ids are text as features.io makes them: integers in decimal, text as given. Text ids of
    a file sorted by id are coded from their run boundaries (no hashing); otherwise the ids
    go through an Arrow dictionary whose (distinct) entries are sorted as text.
    """
    if not pa.types.is_integer(ids.type):
        if pa.types.is_large_string(ids.type):
            ids = ids.cast(pa.string())
        heads, starts = id_runs(ids)
        # Sorted by id exactly when each run's id is below the next run's: then runs are customers.
        if len(heads) == 1 or pc.all(pc.less(heads.slice(0, len(heads) - 1), heads.slice(1))).as_py():
            return (heads, run_numbers(starts, len(ids))) if _plain_ids(heads) else None
        del starts, heads
    if isinstance(ids, pa.ChunkedArray):  # one array, so one dictionary
        ids = ids.combine_chunks()
    encoded = pc.dictionary_encode(ids)
    dictionary, indices = encoded.dictionary, encoded.indices.to_numpy()
    text = dictionary.cast(pa.string())
    order = pc.array_sort_indices(text).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    uniques = text.take(pa.array(order))
    return (uniques, rank[indices]) if _plain_ids(uniques) else None


def _plain_ids(uniques: pa.Array) -> bool:
    """True when no id is empty or starts or ends with blanks (features.io would strip those)."""
    if pc.any(pc.equal(pc.utf8_length(uniques), 0)).as_py():
        return False
    ends = pc.unique(pa.concat_arrays([pc.utf8_slice_codeunits(uniques, 0, 1),
                                       pc.utf8_slice_codeunits(uniques, -1, 2**31 - 1)]))
    return not any(ch.isspace() for ch in ends.to_pylist())


class ArrowEngine(CodedArrays):
    """Feature engine over a Parquet log in memory (module doc); open it with :func:`open_arrow_engine`."""

    def __init__(self, log: _Log, settings: ArrowSettings = ArrowSettings()) -> None:
        self.settings = settings
        self._examples = _examples(log)
        code, day, amount, _ = merged_days(log.code, log.day, log.units, log.decimals)
        super().__init__(pd.Index(log.ids.to_pandas(), name="customer_id"), code, day, amount,
                         rows_per_chunk=settings.rows_per_chunk)

    def _example_rows(self) -> pd.DataFrame:
        return self._examples


_EXAMPLE_CUSTOMERS = 10


def _examples(log: _Log) -> pd.DataFrame:
    """Raw rows of the first :data:`_EXAMPLE_CUSTOMERS` customers by id, in (id, ts, amount) order."""
    rows = np.flatnonzero(log.code < _EXAMPLE_CUSTOMERS)
    ts_ns = _ts_ns(log.ts, rows)
    order = np.lexsort((log.amount[rows], ts_ns, log.code[rows]))
    rows, ts_ns = rows[order], ts_ns[order]
    ids = np.asarray(log.ids.slice(0, _EXAMPLE_CUSTOMERS).to_pylist(), dtype=object)
    return pd.DataFrame({"customer_id": ids[log.code[rows]].astype(str),
                         "date": pd.to_datetime(ts_ns).strftime("%Y-%m-%d").to_numpy().astype(str),
                         "amount": log.amount[rows].astype(float)})
