"""One BLAS thread during fits (custscore.threads.one_blas_thread) against BLAS' own threads.

Fits MBG/NBD on 1M simulated customers (benchmarks/purchase_bench.py's population) ``--repeats``
times each way, alternating, in one process: with the shipped limit, and with it replaced by a
no-op (BLAS keeps its default, one thread per core). Run it with other work on the machine too:
OpenBLAS' spinning threads hurt most when the cores are shared.

    python benchmarks/blas_bench.py --repeats 3
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from purchase_bench import ours, population  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import custscore.training.fitting as fitting

    shipped = fitting.one_blas_thread
    x, t_x, T = population("mbgnbd", args.customers)
    ours("mbgnbd").fit(x, t_x, T)  # warm-up: imports, page faults
    print(f"MBG/NBD fit of {args.customers:,} customers; load average {os.getloadavg()[0]:.2f}")
    for k in range(args.repeats):
        for name, limit in (("one BLAS thread (shipped)", shipped), ("BLAS default threads", contextlib.nullcontext)):
            fitting.one_blas_thread = limit
            start = time.perf_counter()
            ours("mbgnbd").fit(x, t_x, T)
            print(f"  run {k + 1}, {name}: {time.perf_counter() - start:.2f} s", flush=True)
    fitting.one_blas_thread = shipped


if __name__ == "__main__":
    main()
