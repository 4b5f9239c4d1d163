"""Choosing a feature engine for a file, and reading customer features chunk by chunk.

``pandas`` reads the whole log into memory (:class:`~custscore.features.customers.PandasEngine`);
``duckdb`` works out of core (:class:`~custscore.features.duckdb_engine.DuckDBEngine`);
``auto`` picks duckdb for files of at least :data:`AUTO_DUCKDB_BYTES` bytes. Both give
identical features (tested), so the choice only affects speed and memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from custscore.config import ENGINES, ColumnMap, parse_date
from custscore.errors import CustscoreError
from custscore.features.customers import FeatureEngine, PandasEngine
from custscore.features.io import read_transactions

#: File size from which ``engine="auto"`` uses DuckDB (64 MiB: about 2 million CSV rows).
AUTO_DUCKDB_BYTES = 64 * 2**20


def choose_engine(path: str | os.PathLike, engine: str = "auto") -> str:
    """``"pandas"`` or ``"duckdb"`` for the file at ``path`` (``auto`` decides by size).

    >>> choose_engine("missing.csv", "pandas")
    'pandas'
    """
    if engine not in ENGINES:
        raise CustscoreError(f"engine: must be one of {list(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine
    path = Path(path)
    return "duckdb" if path.is_file() and path.stat().st_size >= AUTO_DUCKDB_BYTES else "pandas"


def open_engine(path: str | os.PathLike, columns: ColumnMap = ColumnMap(), engine: str = "auto") -> FeatureEngine:
    """Read and validate the log at ``path`` with the chosen engine (see :func:`choose_engine`)."""
    if choose_engine(path, engine) == "duckdb":
        from custscore.features.duckdb_engine import DuckDBEngine  # duckdb is only imported when used

        return DuckDBEngine(path, columns)
    if engine == "spark":
        from custscore.features.spark_engine import SparkEngine  # pyspark is an optional extra

        return SparkEngine(path, columns)
    return PandasEngine(read_transactions(path, columns))


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
