"""Seeded synthetic transaction logs for the benchmarks, written to Parquet block by block.

Customers follow the BG/NBD + Gamma-Gamma story (:func:`custscore.training.simulate.simulate_transactions`,
vectorised) over 2021-01-01 .. 2023-12-31 with first purchases spread over the first
year; the parameters below give about 10 transactions per customer, so ``--customers
5000000`` writes about 50 million rows. Blocks of ``--block`` customers are simulated
with seeds ``seed + block number`` and appended as row groups, so memory stays bounded;
customer ids are the zero-padded block number followed by the zero-padded number within
the block (unique, sorted like the rows).

    python benchmarks/generate.py --customers 1000000 --output /tmp/bench/tx_10m.parquet

``--shuffle`` then rewrites the file with its rows in a seeded random order (read whole
into memory: for the 10M-row log, to time the engines on a log not sorted by customer).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from custscore.training.simulate import simulate_transactions

#: BG/NBD (alpha in days) and Gamma-Gamma parameters of the synthetic population.
PARAMS = dict(r=0.72, alpha=40.0, a=0.5, b=6.0, p=6.0, q=3.7, v=15.0)
START, END, COHORT_DAYS = "2021-01-01", "2023-12-31", 365


def generate(n_customers: int, output: Path, seed: int = 0, block: int = 500_000) -> int:
    """Write the log to ``output`` (Parquet); return the number of transactions."""
    n_blocks = -(-n_customers // block)
    width = len(str(n_blocks - 1))
    rows = 0
    writer = None
    tmp = output.with_name(output.name + ".tmp")
    try:
        for k in range(n_blocks):
            size = min(block, n_customers - k * block)
            log = simulate_transactions(size, **PARAMS, start=START, end=END, seed=seed + k, cohort_days=COHORT_DAYS)
            log["customer_id"] = f"{k:0{width}d}" + log["customer_id"].str.zfill(len(str(block - 1)))
            table = pa.Table.from_pandas(log, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(log)
        writer.close()
        tmp.replace(output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def shuffle_rows(path: Path, seed: int = 0) -> None:
    """Rewrite the Parquet file at ``path`` with its rows in a seeded random order."""
    import numpy as np

    table = pq.read_table(path)
    order = np.random.default_rng(seed).permutation(table.num_rows)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table.take(pa.array(order)), tmp)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffle", action="store_true", help="write the rows in a random order (seeded)")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = generate(args.customers, args.output, args.seed)
    if args.shuffle:
        shuffle_rows(args.output, args.seed)
    print(f"{args.output}: {rows:,} transactions, {args.customers:,} customers "
          f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
