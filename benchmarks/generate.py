"""Seeded synthetic transaction logs for the benchmarks, written to Parquet block by block.

Customers follow the BG/NBD + Gamma-Gamma story (:func:`custscore.training.simulate.simulate_transactions`,
vectorised) over 2021-01-01 .. 2023-12-31 with first purchases spread over the first
year; the parameters below give about 10 transactions per customer, so ``--customers
5000000`` writes about 50 million rows. Blocks of ``--block`` customers are simulated
with seeds ``seed + block number`` and appended as row groups, so memory stays bounded;
customer ids are the zero-padded block number followed by the zero-padded number within
the block (unique, sorted like the rows).

    python benchmarks/generate.py --customers 1000000 --output /tmp/bench/tx_10m.parquet

``--order`` chooses the row order: ``customer`` (as simulated), ``time`` (by date-time, as
a shop's daily export is; ties in customer order) or ``shuffled`` (seeded random order);
the last two read the log whole into memory. ``--time-of-day`` gives each purchase a
seeded time within its day (seconds), so dates carry times as most exports do. An output
ending in ``.csv`` is written as CSV (``customer_id,date,amount``, ISO date-times), by
row groups from the Parquet file generated first.

    python benchmarks/generate.py --customers 1000000 --order time --time-of-day --output /tmp/bench/tx_10m_time.csv
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


#: Row orders of ``--order``.
ORDERS = ("customer", "time", "shuffled")


def reorder_rows(path: Path, order: str, seed: int = 0, time_of_day: bool = False) -> None:
    """Rewrite the Parquet file at ``path`` in ``order`` (:data:`ORDERS`), with seeded times of day if asked."""
    import numpy as np
    import pyarrow.compute as pc

    if order == "customer" and not time_of_day:
        return
    table = pq.read_table(path)
    rng = np.random.default_rng(seed)
    if time_of_day:
        seconds = pa.array(rng.integers(0, 86_400, table.num_rows), pa.int64()).cast(pa.duration("s"))
        dates = pc.add(table["date"].combine_chunks().cast(pa.timestamp("s")), seconds)
        table = table.set_column(table.schema.get_field_index("date"), "date", dates)
    if order == "time":  # pyarrow's sort is stable: ties keep the customer order
        table = table.take(pc.sort_indices(table, sort_keys=[("date", "ascending")]))
    elif order == "shuffled":
        table = table.take(pa.array(rng.permutation(table.num_rows)))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def parquet_to_csv(source: Path, output: Path) -> None:
    """Write the Parquet log ``source`` as CSV at ``output``, one row group at a time."""
    import pyarrow.csv as pacsv

    parquet = pq.ParquetFile(source)
    tmp = output.with_name(output.name + ".tmp")
    with pacsv.CSVWriter(tmp, parquet.schema_arrow) as writer:
        for k in range(parquet.num_row_groups):
            writer.write_table(parquet.read_row_group(k))
    tmp.replace(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", choices=ORDERS, default="customer", help="row order (default: customer)")
    parser.add_argument("--shuffle", action="store_true", help="the same as --order shuffled")
    parser.add_argument("--time-of-day", action="store_true", help="give each purchase a time within its day")
    args = parser.parse_args()
    order = "shuffled" if args.shuffle else args.order
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    csv = args.output.suffix == ".csv"
    parquet = args.output.with_name(args.output.name + ".parquet") if csv else args.output
    rows = generate(args.customers, parquet, args.seed)
    reorder_rows(parquet, order, args.seed, args.time_of_day)
    if csv:
        parquet_to_csv(parquet, args.output)
        parquet.unlink()
    print(f"{args.output}: {rows:,} transactions, {args.customers:,} customers "
          f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
