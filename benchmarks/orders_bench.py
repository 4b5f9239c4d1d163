"""RFM summary on logs in every row order and format: custscore vs lifetimes vs one bare DuckDB query.

Issue "Speed on the logs people actually export": real exports are time-ordered CSV more
often than customer-sorted Parquet. For each log given (make them with
``benchmarks/generate.py --order customer|time|shuffled [--time-of-day]``, ``.csv`` or
``.parquet``), three steps run side by side, each in a fresh subprocess (peak RSS from
``os.wait4``, as in ``benchmarks/bench.py``):

- ``custscore``: ``open_engine(log, engine=ENGINE)`` + ``rfm_table``, what ``custscore rfm`` runs;
- ``lifetimes``: ``pd.read_csv``/``pd.read_parquet`` + ``summary_data_from_transaction_data`` (``freq="D"``);
- ``duckdb``: one SQL query (read, per-customer-day sums, per-customer first/last day, repeat
  days and mean repeat-day spend) written to Parquet: the floor a columnar pass can reach.

Printed per log: seconds and peak RSS of each, lifetimes' time over custscore's (the issue's
targets: >= 6x for CSV, >= 8x for Parquet), custscore's over DuckDB's (<= 1.5x) and
custscore's RSS over lifetimes' (<= 0.5).

    python benchmarks/orders_bench.py --logs /tmp/bench/tx_10m_time.csv /tmp/bench/tx_10m_shuffled.parquet
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import AS_OF, measured_child, start_run  # noqa: E402


def child_custscore(log: str, engine: str, out: str) -> dict:
    from custscore.features.engines import open_engine, rfm_table

    start = time.perf_counter()
    summary = rfm_table(open_engine(log, engine=engine), AS_OF, "D")
    seconds = time.perf_counter() - start
    summary.to_parquet(out)
    return {"seconds": seconds, "customers": len(summary)}


def child_lifetimes(log: str, out: str) -> dict:
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    start = time.perf_counter()
    tx = (pd.read_csv(log, dtype={"customer_id": str}, parse_dates=["date"]) if log.endswith(".csv")
          else pd.read_parquet(log))
    summary = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="amount",
                                                 observation_period_end=AS_OF, freq="D")
    seconds = time.perf_counter() - start
    summary.to_parquet(out)
    return {"seconds": seconds, "customers": len(summary)}


#: The bare query: per-customer-day totals, then the BTYD summary in days (lifetimes' definitions).
BARE_QUERY = """
COPY (
  WITH days AS (
    SELECT customer_id, CAST(date AS DATE) AS day, SUM(amount) AS amount
    FROM {reader} WHERE CAST(date AS DATE) <= DATE '{as_of}' GROUP BY ALL),
  ranked AS (SELECT *, MIN(day) OVER (PARTITION BY customer_id) AS first_day FROM days)
  SELECT customer_id, COUNT(*) - 1 AS frequency, DATE_DIFF('day', MIN(day), MAX(day)) AS recency,
         DATE_DIFF('day', MIN(day), DATE '{as_of}') AS T,
         COALESCE(AVG(amount) FILTER (WHERE day > first_day), 0) AS monetary_value
  FROM ranked GROUP BY customer_id
) TO '{out}' (FORMAT PARQUET)
"""


def child_duckdb(log: str, out: str) -> dict:
    import duckdb

    reader = (f"read_csv('{log}', types={{'customer_id': 'VARCHAR'}})" if log.endswith(".csv")
              else f"read_parquet('{log}')")
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(BARE_QUERY.format(reader=reader, as_of=AS_OF, out=out))
    seconds = time.perf_counter() - start
    customers = con.execute(f"SELECT COUNT(*) FROM read_parquet('{out}')").fetchone()[0]
    return {"seconds": seconds, "customers": customers}


CHILDREN = {"custscore": child_custscore, "lifetimes": child_lifetimes, "duckdb": child_duckdb}


def compare(ours: Path, theirs: Path, bare: Path) -> str:
    """Do the three summaries agree (frequency, recency, T exactly; spend to 1e-9 relative)?"""
    import numpy as np
    import pandas as pd

    a = pd.read_parquet(ours)
    b = pd.read_parquet(theirs)
    b.index = b.index.astype(str)
    c = pd.read_parquet(bare).set_index("customer_id")
    b, c = b.loc[a.index], c.loc[a.index]
    same = all(np.array_equal(a[x].to_numpy(dtype=float), other[y].to_numpy(dtype=float))
               for other in (b, c) for x, y in (("frequency", "frequency"), ("recency_days", "recency"), ("T_days", "T")))
    money = max(float(np.max(np.abs(a["monetary_value"].to_numpy() - o["monetary_value"].to_numpy())
                             / np.maximum(np.abs(o["monetary_value"].to_numpy()), 1e-12))) for o in (b, c))
    return f"{len(a):,} customers; frequency/recency/T identical in all three: {same}; spend max rel. diff {money:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description="RFM summary by row order and format")
    parser.add_argument("--logs", nargs="+", type=Path, help="logs from benchmarks/generate.py (.csv or .parquet)")
    parser.add_argument("--engine", default="auto", help="custscore's --engine (default auto)")
    args, work = start_run(parser, CHILDREN, "orders-bench-run")
    if work is None:
        return
    summary = []
    for log in args.logs:
        print(f"{log} (as of {AS_OF})", flush=True)
        outs = {name: work / f"{log.stem}_{name}.parquet" for name in CHILDREN}
        ours = measured_child(__file__, "custscore", str(log), args.engine, str(outs["custscore"]))
        theirs = measured_child(__file__, "lifetimes", str(log), str(outs["lifetimes"]))
        bare = measured_child(__file__, "duckdb", str(log), str(outs["duckdb"]))
        for name, r in (("custscore", ours), ("lifetimes", theirs), ("duckdb", bare)):
            print(f"  {name:<10} {r['seconds']:8.2f} s  peak RSS {r['rss_gb']:6.2f} GB", flush=True)
        print(f"  {compare(outs['custscore'], outs['lifetimes'], outs['duckdb'])}")
        summary.append(f"{log.name}: lifetimes/custscore {theirs['seconds'] / ours['seconds']:.1f}x, "
                       f"custscore/duckdb {ours['seconds'] / bare['seconds']:.2f}x, "
                       f"RSS custscore/lifetimes {ours['rss_gb'] / theirs['rss_gb']:.2f}")
    print("\nsummary")
    for line in summary:
        print(f"  {line}")


if __name__ == "__main__":
    main()
