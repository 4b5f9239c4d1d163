"""Peak memory of ``custscore rfm --engine duckdb`` with one huge customer (issue #15).

Writes two Parquet logs into ``--workdir``: ``population.parquet``, a seeded population
(``benchmarks/generate.py``'s BG/NBD story), and ``whale.parquet``, the same rows plus one
customer with ``--whale-rows`` rows (default 10 million) spread over the log's three
years, whose id sorts first (so it is in the engine's first chunk and in its example
rows). Then runs ``custscore rfm --engine duckdb`` on each in a fresh child process and
reports the child's peak RSS (``ru_maxrss`` from ``os.wait4``), wall time and the ratio
whale / population, next to the engine's documented memory limit. For scale, the same
is measured on ``spread.parquet``: a population with about as many rows as the whale log
but no huge customer (so the whale's own cost is whale / spread).

    python benchmarks/one_whale.py --workdir /tmp/whale
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import run_measured  # noqa: E402  (the benchmarks' own child-process measurement)
from generate import END, START, generate  # noqa: E402  (the benchmarks' own generator)

AS_OF = END
WHALE_ID = "0-whale"  # sorts before the generator's ids ("00...")
BLOCK_ROWS = 1_000_000


def write_whale_log(population: Path, output: Path, whale_rows: int, seed: int = 1) -> None:
    """``population``'s rows, then ``whale_rows`` rows of one customer (uniform times, 0.01..500.00)."""
    rng = np.random.default_rng(seed)
    table = pq.read_table(population)
    start = np.datetime64(START, "s").astype("int64")
    span = np.datetime64(END, "s").astype("int64") + 86_399 - start
    tmp = output.with_name(output.name + ".tmp")
    with pq.ParquetWriter(tmp, table.schema) as writer:
        writer.write_table(table)
        for first in range(0, whale_rows, BLOCK_ROWS):
            n = min(BLOCK_ROWS, whale_rows - first)
            seconds = start + rng.integers(0, span, n)
            block = {"customer_id": pa.array(np.full(n, WHALE_ID, dtype=object), pa.string()),
                     "date": pa.array(seconds.astype("datetime64[s]")),
                     "amount": pa.array(rng.integers(1, 50_001, n) / 100.0)}
            writer.write_table(pa.table(block).cast(table.schema))
    os.replace(tmp, output)


def run_rfm(log: Path, out: Path) -> tuple[float, float, str]:
    """(peak RSS in GB, seconds, last stdout line) of ``custscore rfm --engine duckdb`` on ``log``."""
    wall, gb, text = run_measured([sys.executable, "-m", "custscore.cli", "rfm", "--transactions", str(log),
                                   "--as-of", AS_OF, "--output", str(out), "--engine", "duckdb"])
    return gb, wall, text.strip().splitlines()[-1]


def write_logs(args: argparse.Namespace, population: Path, whale: Path, spread: Path) -> None:
    """The three logs (module doc), each only when missing."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not population.exists():
        generate(args.customers, population)
    if not whale.exists():
        write_whale_log(population, whale, args.whale_rows)
    if not spread.exists():
        ratio = pq.ParquetFile(whale).metadata.num_rows / pq.ParquetFile(population).metadata.num_rows
        generate(round(args.customers * ratio), spread, seed=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=100_000, help="population size (about 10 rows each)")
    parser.add_argument("--whale-rows", type=int, default=10_000_000)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    population, whale, spread = (args.workdir / f"{name}.parquet" for name in ("population", "whale", "spread"))
    if args.generate_only:
        write_logs(args, population, whale, spread)
        return
    # In a child: Linux carries a parent's peak RSS at fork into the child's ru_maxrss, so
    # this process stays small while the children are measured.
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--generate-only"], check=True)
    from custscore.features.duckdb_engine import DuckDBSettings

    rows = {p.name: pq.ParquetFile(p).metadata.num_rows for p in (population, whale, spread)}
    print(f"logs: {population.name} {rows[population.name]:,} rows; {whale.name} {rows[whale.name]:,} rows "
          f"(one customer with {args.whale_rows:,}); {spread.name} {rows[spread.name]:,} rows")
    results = {}
    for log in (population, whale, spread):
        gb, seconds, line = run_rfm(log, args.workdir / f"rfm_{log.stem}.parquet")
        results[log.stem] = gb
        print(f"custscore rfm --engine duckdb {log.name}: peak RSS {gb:.2f} GB, {seconds:.1f} s | {line}")
    limit = DuckDBSettings().memory_limit
    print(f"peak RSS ratios: whale / population {results['whale'] / results['population']:.2f}, "
          f"whale / spread (same rows, no whale) {results['whale'] / results['spread']:.2f}; "
          f"DuckDB engine memory limit {limit}, rows_per_chunk {DuckDBSettings().rows_per_chunk:,} purchase days")


if __name__ == "__main__":
    main()
