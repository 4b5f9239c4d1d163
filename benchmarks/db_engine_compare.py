"""A database result -> RFM summary: the DuckDB engine fed the stream (``--engine auto`` since the
arrow engine's removal) against the removed arrow engine's path (batches gathered into one table,
then ``arrow_engine_of_table``), and the read alone. One path per fresh process; run alternately:

    git show fca13e7:features/arrow_engine.py > /tmp/old_arrow_engine.py   # the removed module
    eval "$(bash .ci/postgres.sh start)"
    python benchmarks/db_engine_compare.py load LOG.parquet
    for i in 1 2 3; do for p in read arrow duckdb; do python benchmarks/db_engine_compare.py $p; done; done

The URL is ``$CUSTSCORE_TEST_POSTGRES_URL``, the table ``engine_cmp``; each path writes its
summary to ``/tmp/db_engine_compare_PATH.parquet`` for comparison.
"""
import os
import resource
import sys
import time

import pyarrow as pa

from custscore.config import ColumnMap
from custscore.features.database import DatabaseLog, _checked, _duckdb_engine, connect, read_batches

URL = os.environ["CUSTSCORE_TEST_POSTGRES_URL"]
LOG = DatabaseLog(URL, table="engine_cmp")
AS_OF = "2023-12-31"


def main(path: str) -> None:
    start = time.perf_counter()
    if path == "load":
        import pyarrow.parquet as pq

        con = connect(URL, must_exist=False)
        con.cursor().adbc_ingest("engine_cmp", pq.read_table(sys.argv[2]), mode="replace")
        con.commit()
        con.close()
        print(f"loaded in {time.perf_counter() - start:.2f} s")
        return
    stream = read_batches(LOG, ColumnMap())
    if path in ("read", "arrow"):
        table = pa.Table.from_batches(list(_checked(stream, LOG)), schema=stream.schema)
        if path == "read":
            print(f"read   {table.num_rows:,} rows {time.perf_counter() - start:6.2f} s  "
                  f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
            return
        sys.path.insert(0, "/tmp")
        from old_arrow_engine import arrow_engine_of_table

        engine = arrow_engine_of_table(table, ColumnMap())
        assert engine is not None, "the arrow path would have fallen back to DuckDB"
        del table
    else:
        engine = _duckdb_engine(stream, LOG, ColumnMap())
    opened = time.perf_counter() - start
    summary = engine.rfm_summary(AS_OF, "D")
    total = time.perf_counter() - start
    summary.to_parquet(f"/tmp/db_engine_compare_{path}.parquet")
    print(f"{path:6s} {type(engine).__name__:12s} open {opened:6.2f} s  open+rfm {total:6.2f} s  "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB  customers {len(summary):,}")


if __name__ == "__main__":
    main(sys.argv[1])
