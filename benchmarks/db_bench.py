"""Transactions in PostgreSQL -> RFM features: custscore's ADBC path vs pandas ``read_sql`` vs the Parquet file.

Each step runs in a fresh process (peak RSS = the child's ``ru_maxrss``, see bench.py) and
computes the BTYD summary of every customer at the log's last day:

- ``adbc_auto``: ``open_engine(DatabaseLog(url, table))``, Arrow record batches from the
  ADBC PostgreSQL driver streamed into the DuckDB engine (``--engine auto``; since the arrow
  engine's removal the same path as ``--engine duckdb``);
- ``adbc_duckdb``: the same batches streamed into the DuckDB engine (``--engine duckdb``);
- ``read_sql``: ``pandas.read_sql`` through SQLAlchemy + psycopg (the ``bench`` extra), then
  features.io's validation and the pandas engine;
- ``parquet``: the same rows from the Parquet file with the DuckDB engine (``--engine duckdb``).

The summaries must be equal (checked). The log comes from benchmarks/generate.py and is
loaded into table ``bench_tx`` (COPY through ADBC) unless it holds the same row count.

    eval "$(bash .ci/postgres.sh start)"
    python benchmarks/generate.py --customers 1000000 --output /tmp/bench/tx_10m.parquet
    python benchmarks/db_bench.py --log /tmp/bench/tx_10m.parquet --url "$CUSTSCORE_TEST_POSTGRES_URL"
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import add_child_and_workdir, machine, measured_child, run_child_or_workdir

TABLE = "bench_tx"


def _summary_out(engine, as_of: str, out: str) -> int:
    from custscore.features.engines import rfm_table

    summary = rfm_table(engine, as_of)
    summary.to_parquet(out)
    return int(len(summary))


def child_load(url: str, log: str) -> dict:
    """(Re)load the Parquet log into ``bench_tx`` unless it already holds the same number of rows."""
    import pyarrow.parquet as pq

    from custscore.features.database import connect

    rows = pq.ParquetFile(log).metadata.num_rows
    con = connect(url)
    cursor = con.cursor()
    cursor.execute(f"SELECT count(*) FROM pg_class WHERE relname = '{TABLE}'")
    if cursor.fetchone()[0]:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        if cursor.fetchone()[0] == rows:
            con.close()
            return {"seconds": 0.0, "rows": rows, "loaded": False}
        cursor.execute(f"DROP TABLE {TABLE}")
    start = time.perf_counter()
    import pyarrow as pa

    file = pq.ParquetFile(log)
    cursor.adbc_ingest(TABLE, pa.RecordBatchReader.from_batches(file.schema_arrow, file.iter_batches(1_000_000)),
                       mode="create")
    con.commit()
    cursor.execute(f"ANALYZE {TABLE}")
    con.commit()
    con.close()
    return {"seconds": time.perf_counter() - start, "rows": rows, "loaded": True}


def child_adbc(url: str, engine: str, as_of: str, out: str) -> dict:
    from custscore.config import ColumnMap
    from custscore.features.database import DatabaseLog
    from custscore.features.engines import open_engine

    start = time.perf_counter()
    opened = open_engine(DatabaseLog(url, table=TABLE), ColumnMap(), engine)
    n = _summary_out(opened, as_of, out)
    return {"seconds": time.perf_counter() - start, "customers": n, "engine": type(opened).__name__}


def child_read_sql(url: str, as_of: str, out: str) -> dict:
    import pandas as pd
    import sqlalchemy

    from custscore.features.customers import PandasEngine
    from custscore.features.io import normalise_transactions

    start = time.perf_counter()
    sa = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with sa.connect() as con:
        frame = pd.read_sql(f"SELECT customer_id, date, amount FROM {TABLE}", con)
    read = time.perf_counter() - start
    n = _summary_out(PandasEngine(normalise_transactions(frame)), as_of, out)
    return {"seconds": time.perf_counter() - start, "read_seconds": read, "customers": n, "engine": "PandasEngine"}


def child_parquet(log: str, as_of: str, out: str) -> dict:
    from custscore.config import ColumnMap
    from custscore.features.engines import open_engine

    start = time.perf_counter()
    opened = open_engine(log, ColumnMap(), "duckdb")
    n = _summary_out(opened, as_of, out)
    return {"seconds": time.perf_counter() - start, "customers": n, "engine": type(opened).__name__}


CHILDREN = {"load": child_load, "adbc": child_adbc, "read_sql": child_read_sql, "parquet": child_parquet}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="Parquet log from benchmarks/generate.py")
    parser.add_argument("--url", default=os.environ.get("CUSTSCORE_TEST_POSTGRES_URL"),
                        help="PostgreSQL URL (default $CUSTSCORE_TEST_POSTGRES_URL)")
    parser.add_argument("--as-of", default="2023-12-31")
    parser.add_argument("--steps", default="adbc_auto,adbc_duckdb,read_sql,parquet")
    add_child_and_workdir(parser, "/tmp/db_bench")
    args = parser.parse_args()
    workdir = run_child_or_workdir(args, CHILDREN)
    if workdir is None:
        return
    if not args.url or args.log is None:
        sys.exit("need --log and --url (or $CUSTSCORE_TEST_POSTGRES_URL)")
    from custscore.features.database import redact_url

    print(machine())
    print(f"log {args.log}, table {TABLE} at {redact_url(args.url)}, as of {args.as_of}")
    load = measured_child(__file__, "load", args.url, str(args.log))
    rows = load["rows"]
    loaded = "" if load["loaded"] else " (already loaded)"
    print(f"  load (COPY)      {load['seconds']:8.2f} s  {rows:,} rows{loaded}")
    steps = {
        "adbc_auto": ("adbc", args.url, "auto"),
        "adbc_duckdb": ("adbc", args.url, "duckdb"),
        "read_sql": ("read_sql", args.url),
        "parquet": ("parquet", str(args.log)),
    }
    results = {}
    for name in args.steps.split(","):
        child, *rest = steps[name]
        out = str(workdir / f"rfm_{name}.parquet")
        result = measured_child(__file__, child, *rest, args.as_of, out)
        results[name] = (result, out)
        extra = f", read_sql alone {result['read_seconds']:.2f} s" if "read_seconds" in result else ""
        print(f"  {name:<12} {result['seconds']:8.2f} s  {rows / result['seconds']:>12,.0f} rows/s  peak RSS "
              f"{result['rss_gb']:5.2f} GB  ({result['engine']}, {result['customers']:,} customers{extra})", flush=True)
    import pandas as pd

    frames = {name: pd.read_parquet(out) for name, (_, out) in results.items()}
    first = next(iter(frames))
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, frames[first], check_exact=True)
    print(f"summaries equal (exactly): {', '.join(frames)}")


if __name__ == "__main__":
    main()
