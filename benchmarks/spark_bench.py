"""Spark (local mode) next to the single-machine DuckDB engine on a synthetic log.

Both steps run each engine in a fresh subprocess (``bench.run_measured``: wall time
and the peak RSS of the Python process; Spark's JVM is a separate process, so for
Spark the RSS is the Python driver only). Inputs come from ``benchmarks/generate.py``.

1. Features at ``--as-of`` from the file: ``DuckDBEngine(...).customer_features`` vs
   ``SparkEngine(...).customer_features_df`` written to Parquet by Spark; the two
   tables are compared (max relative difference per column).
2. ``custscore score`` of the log with ``--model`` (e.g. trained on a smaller log):
   ``--engine duckdb`` vs ``--engine spark``.

    python benchmarks/spark_bench.py --log /tmp/bench/tx_50m.parquet --model models:/NAME@champion \\
        --tracking-uri sqlite:////tmp/bench/spark/mlflow.db --workdir /tmp/bench/spark
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import add_child_and_workdir, machine, measured_child, run_child_or_workdir, run_measured

AS_OF = "2023-12-31"


def child_features_duckdb(log: str, out: str) -> dict:
    from custscore.features.duckdb_engine import DuckDBEngine

    start = time.perf_counter()
    features = DuckDBEngine(log).customer_features(AS_OF, "D")
    seconds = time.perf_counter() - start
    features.to_parquet(out)
    return {"seconds": seconds, "customers": len(features)}


def child_features_spark(log: str, out: str) -> dict:
    from custscore.features.spark_engine import SparkEngine, spark_session

    spark = spark_session()  # JVM start-up, timed apart
    start = time.perf_counter()
    engine = SparkEngine(log, spark=spark)
    loaded = time.perf_counter() - start
    engine.customer_features_df(AS_OF, "D").write.mode("overwrite").parquet(out)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "load_seconds": loaded, "customers": spark.read.parquet(out).count()}


CHILDREN = {f.__name__[len("child_"):]: f for f in (child_features_duckdb, child_features_spark)}


def step(name: str, *args: str) -> dict:
    result = measured_child(__file__, name, *args)
    print(f"  {name:<18} {result['seconds']:8.1f} s (wall {result['wall']:.1f} s)  peak RSS {result['rss_gb']:5.2f} GB  "
          f"{result}", flush=True)
    return result


def compare(duck_path: Path, spark_path: Path) -> str:
    import numpy as np
    import pandas as pd

    duck = pd.read_parquet(duck_path)
    spark = pd.read_parquet(spark_path).set_index("customer_id").loc[duck.index]
    worst = {}
    for column in duck.columns:
        a, b = duck[column].to_numpy(dtype=float), spark[column].to_numpy(dtype=float)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b) / np.maximum(np.abs(a), 1.0))
        worst[column] = float(np.nanmax(diff)) if len(diff) else 0.0
    name, value = max(worst.items(), key=lambda kv: kv[1])
    return f"  features: {len(duck):,} customers, max relative difference {value:.1e} ({name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path)
    parser.add_argument("--model", help="model URI for the scoring step (skipped without it)")
    parser.add_argument("--tracking-uri")
    add_child_and_workdir(parser, "spark-bench-run")
    args = parser.parse_args()
    work = run_child_or_workdir(args, CHILDREN)
    if work is None:
        return
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.1f}", flush=True)
    print(f"1. features of {args.log} at {AS_OF}", flush=True)
    step("features_duckdb", str(args.log), str(work / "features_duckdb.parquet"))
    step("features_spark", str(args.log), str(work / "features_spark.parquet"))
    print(compare(work / "features_duckdb.parquet", work / "features_spark.parquet"), flush=True)
    if args.model:
        print(f"2. custscore score --as-of {AS_OF} with {args.model}", flush=True)
        for engine in ("duckdb", "spark"):
            argv = [sys.executable, "-m", "custscore.cli", "score", "--model", args.model, "--transactions",
                    str(args.log), "--as-of", AS_OF, "--output", str(work / f"scores_{engine}.parquet"),
                    "--engine", engine] + (["--tracking-uri", args.tracking_uri] if args.tracking_uri else [])
            wall, rss, text = run_measured(argv)
            print(f"  score --engine {engine:<7} wall {wall:8.1f} s  peak RSS {rss:5.2f} GB  "
                  f"{text.strip().splitlines()[-1]}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
