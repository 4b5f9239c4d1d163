"""Choosing a feature engine for a file, and reading customer features chunk by chunk.

``pandas`` reads the whole log into memory (:class:`~custscore.features.customers.PandasEngine`);
``arrow`` reads a Parquet log into memory with pyarrow and merges it per day in numpy
(:class:`~custscore.features.arrow_engine.ArrowEngine`, the fastest; a log it does not
read, e.g. CSV or one with bad values, goes to duckdb); ``duckdb`` reads any log with DuckDB
(:class:`~custscore.features.duckdb_engine.DuckDBEngine`) and answers from the same in-memory
arrays as arrow when it fits (:func:`in_memory_rows`), else out of core. ``auto`` picks pandas for files
under :data:`AUTO_LARGE_BYTES` bytes, else arrow for Parquet logs grouped by customer
(:func:`parquet_sorted_by`: the arrow engine's fast case; on a shuffled or time-ordered
log the DuckDB engine is faster and lighter, benchmarks/ORDERS_RESULTS.md run 12) whose
estimated in-memory size (:data:`ARROW_BYTES_PER_ROW` per transaction) is at most
:data:`ARROW_MEMORY_SHARE` of the memory available, else duckdb. All give identical
features (tested), so the choice only affects speed and memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd

from custscore.config import ENGINES, ColumnMap, parse_date
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine, PandasEngine
from custscore.features.database import DatabaseLog
from custscore.features.io import _PARQUET_SUFFIXES, read_transactions
from custscore.features.rfm import rfm_columns

#: File size from which ``engine="auto"`` leaves pandas for arrow or duckdb (64 MiB: about 2
#: million CSV rows).
AUTO_LARGE_BYTES = 64 * 2**20
#: Peak memory of the arrow engine per transaction, with margin (0.80 GB peak for the RFM
#: summary of 10.6M transactions, benchmarks/RESULTS.md run 5); ``auto`` uses it to decide.
ARROW_BYTES_PER_ROW = 120
#: Share of the available memory ``auto`` lets the arrow engine take.
ARROW_MEMORY_SHARE = 0.5


def available_memory_bytes() -> Optional[int]:
    """Memory available to new processes (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def in_memory_rows(budget_bytes: Optional[float] = None) -> Optional[float]:
    """The most transactions the in-memory engines may take: :data:`ARROW_BYTES_PER_ROW` each within
    ``budget_bytes`` (default :data:`ARROW_MEMORY_SHARE` of :func:`available_memory_bytes`); None
    where the memory available is unknown.

    >>> in_memory_rows(1200)
    10.0
    """
    if budget_bytes is None:
        memory = available_memory_bytes()
        if memory is None:
            return None
        budget_bytes = ARROW_MEMORY_SHARE * memory
    return budget_bytes / ARROW_BYTES_PER_ROW


def parquet_sorted_by(path: Path, column: str) -> bool:
    """Whether the Parquet file's row groups hold ``column`` in increasing, non-overlapping ranges
    (each group's minimum >= the previous group's maximum: sorted by it, as far as the footer's
    statistics tell; a log grouped by customer in another order counts as unsorted).

    True also where it cannot tell (one row group, no statistics, no such column): then
    ``auto`` keeps the arrow engine, which reads any order, only slower.
    """
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
        index = meta.schema.names.index(column)
        previous = None
        for k in range(meta.num_row_groups):
            stats = meta.row_group(k).column(index).statistics
            if stats is None or not stats.has_min_max:
                return True
            if previous is not None and stats.min < previous:
                return False
            previous = stats.max
    except Exception:  # not readable or not comparable here: the engine that opens it says why
        return True
    return True


def choose_engine(path: str | os.PathLike, engine: str = "auto", columns: ColumnMap = ColumnMap()) -> str:
    """The engine for the file at ``path``: ``engine`` itself, or for ``auto`` by size (module doc).

    >>> choose_engine("missing.csv", "pandas")
    'pandas'
    """
    if engine not in ENGINES:
        raise CustscoreError(f"engine: must be one of {list(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine
    path = Path(path)
    if not path.is_file() or path.stat().st_size < AUTO_LARGE_BYTES:
        return "pandas"
    if path.name.lower().endswith(_PARQUET_SUFFIXES):
        rows, budget = _parquet_rows(path), in_memory_rows()
        if rows is not None and budget is not None and rows <= budget and parquet_sorted_by(path, columns.customer):
            return "arrow"
    return "duckdb"


def _parquet_rows(path: Path) -> Optional[int]:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # not readable here: the engine that opens it says why
        return None


def open_engine(path: "str | os.PathLike | DatabaseLog", columns: ColumnMap = ColumnMap(),
                engine: str = "auto") -> FeatureEngine:
    """Read and validate the log at ``path`` with the chosen engine (see :func:`choose_engine`);
    a :class:`~custscore.features.database.DatabaseLog` is read by
    :func:`~custscore.features.database.open_database_engine`."""
    if isinstance(path, DatabaseLog):
        from custscore.features.database import open_database_engine

        return open_database_engine(path, columns, engine)
    chosen = choose_engine(path, engine, columns)
    if chosen == "arrow":
        from custscore.features.arrow_engine import open_arrow_engine

        arrow = open_arrow_engine(path, columns)
        if arrow is not None:
            return arrow
        chosen = "duckdb"  # a log the arrow engine does not read (module doc)
    if chosen == "duckdb":
        from custscore.features.duckdb_engine import DuckDBEngine  # duckdb is only imported when used

        return DuckDBEngine(path, columns)
    if engine == "spark":
        from custscore.features.spark_engine import SparkEngine  # pyspark is an optional extra

        return SparkEngine(path, columns)
    return PandasEngine(read_transactions(path, columns), columns.amount_decimals)


def iter_customer_features(engine: FeatureEngine, as_of: pd.Timestamp, time_unit: str) -> Iterator[pd.DataFrame]:
    """``engine.customer_features(as_of, time_unit)`` as consecutive chunks of customers.

    Concatenated, the chunks equal the whole frame (sorted by ``customer_id``). Engines
    that can bound memory (DuckDB) produce them chunk by chunk; others in one piece.
    """
    as_of = parse_date(as_of, "as_of")
    chunks = getattr(engine, "iter_customer_features", None)
    if chunks is not None:
        yield from chunks(as_of, time_unit)
    else:
        yield engine.customer_features(as_of, time_unit)


def rfm_table(engine: FeatureEngine, as_of: pd.Timestamp, time_unit: str = "D") -> pd.DataFrame:
    """The BTYD summary of every customer at ``as_of``: :func:`custscore.features.rfm.rfm_summary`'s frame.

    Engines that compute it directly (pandas, arrow, duckdb) do; the others select it from their
    customer features.
    """
    as_of = parse_date(as_of, "as_of")
    direct = getattr(engine, "rfm_summary", None)
    if direct is not None:
        return direct(as_of, time_unit)
    features = pd.concat(list(iter_customer_features(engine, as_of, time_unit)))
    return features[list(rfm_columns(time_unit))]
