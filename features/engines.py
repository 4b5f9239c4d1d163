"""Choosing a feature engine for a file, and reading customer features chunk by chunk.

``pandas`` reads the whole log into memory (:class:`~custscore.features.customers.PandasEngine`,
the readable reference the tests compare the others with); ``duckdb`` reads any CSV or Parquet
log with DuckDB (:class:`~custscore.features.duckdb_engine.DuckDBEngine`) and answers from
in-memory arrays when it fits (:func:`in_memory_rows`), else out of core; ``spark`` runs on
Spark DataFrames. ``auto`` picks pandas for files under :data:`AUTO_LARGE_BYTES` bytes, else
duckdb. All give identical features (tested), so the choice only affects speed and memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd

from custscore.config import ColumnMap, _check_engine, parse_date
from custscore.features.customers import FeatureEngine, PandasEngine
from custscore.features.database import DatabaseLog
from custscore.features.io import read_transactions
from custscore.features.rfm import rfm_columns

#: File size from which ``engine="auto"`` leaves pandas for duckdb (64 MiB: about 2 million
#: CSV rows).
AUTO_LARGE_BYTES = 64 * 2**20
#: Memory per transaction the in-memory mode may take: about the DuckDB engine's peak RSS per
#: transaction in memory (1.22-1.27 GB, the interpreter included, for 10.6M transactions and 1M
#: customers, benchmarks/ORDERS_RESULTS.md run 21).
IN_MEMORY_BYTES_PER_ROW = 120
#: Share of the available memory the in-memory mode may take.
IN_MEMORY_SHARE = 0.5


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
    """The most transactions the in-memory mode may take: :data:`IN_MEMORY_BYTES_PER_ROW` each within
    ``budget_bytes`` (default :data:`IN_MEMORY_SHARE` of :func:`available_memory_bytes`); None
    where the memory available is unknown.

    >>> in_memory_rows(1200)
    10.0
    """
    if budget_bytes is None:
        memory = available_memory_bytes()
        if memory is None:
            return None
        budget_bytes = IN_MEMORY_SHARE * memory
    return budget_bytes / IN_MEMORY_BYTES_PER_ROW


def choose_engine(path: str | os.PathLike, engine: str = "auto") -> str:
    """The engine for the file at ``path``: ``engine`` itself, or for ``auto`` by size (module doc).

    >>> choose_engine("missing.csv", "pandas")
    'pandas'
    """
    _check_engine(engine)
    if engine != "auto":
        return engine
    path = Path(path)
    if not path.is_file() or path.stat().st_size < AUTO_LARGE_BYTES:
        return "pandas"
    return "duckdb"


def open_engine(path: "str | os.PathLike | DatabaseLog", columns: ColumnMap = ColumnMap(),
                engine: str = "auto") -> FeatureEngine:
    """Read and validate the log at ``path`` with the chosen engine (see :func:`choose_engine`);
    a :class:`~custscore.features.database.DatabaseLog` is read by
    :func:`~custscore.features.database.open_database_engine`."""
    _check_engine(engine)
    if isinstance(path, DatabaseLog):
        from custscore.features.database import open_database_engine

        return open_database_engine(path, columns, engine)
    chosen = choose_engine(path, engine)
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

    Engines that compute it directly (pandas, duckdb) do; the others select it from their
    customer features.
    """
    as_of = parse_date(as_of, "as_of")
    direct = getattr(engine, "rfm_summary", None)
    if direct is not None:
        return direct(as_of, time_unit)
    features = pd.concat(list(iter_customer_features(engine, as_of, time_unit)))
    return features[list(rfm_columns(time_unit))]
