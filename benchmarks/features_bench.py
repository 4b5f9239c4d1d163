"""Per-customer features at three dates: this checkout against another installation, side by side.

``customer_features`` (:mod:`custscore.features.customers`) is what every engine runs per
chunk, and ``train`` computes it at 3+ dates, ``score`` at 1. Each round runs one fresh
child process per Python given, alternating, so both see the same machine load: the child
opens the log with the DuckDB engine (in memory, not timed), then times the engine's
``customer_features(date, "W")`` (its chunks of purchases, the pure function on each, the
concatenation) at each date once, then repeats the first date under
``tracemalloc`` for the peak of the memory numpy and Python allocate during one call
(Arrow's own pool is not traced). The load average is printed per round, as the machine
is shared.

    python benchmarks/features_bench.py --log /tmp/s8/tx_10m_customer.parquet \\
        --baseline /root/.pyenv/versions/3.11.7/bin/python --rounds 3

``--baseline`` is a Python whose ``custscore`` is the installation to compare with (the
children run in ``/tmp``, so each imports its own installation; the path is printed).
Printed at the end: the median over rounds of the three dates' total per Python and
baseline / this, in wall time and in the child's CPU time (steadier when other jobs share
the cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import run_measured  # noqa: E402

DATES = ("2023-04-03", "2023-07-02", "2023-09-30")


def child(log: str, *dates: str) -> dict:
    import tracemalloc

    import custscore
    from custscore.features.engines import open_engine

    engine = open_engine(log, engine="duckdb")
    seconds, cpu = {}, 0.0
    for as_of in dates:
        start, start_cpu = time.perf_counter(), time.process_time()
        features = engine.customer_features(as_of, "W")
        seconds[as_of] = time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    del features
    tracemalloc.start()
    engine.customer_features(dates[0], "W")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"custscore": os.path.dirname(custscore.__file__), "seconds": seconds, "cpu_seconds": cpu,
            "traced_peak_gb": peak / 2**30}


def run(python: str, log: str, dates: tuple[str, ...]) -> dict:
    _, rss, text = run_measured_in_tmp([python, str(Path(__file__).resolve()), "--child", log, *dates])
    result = json.loads(text.strip().splitlines()[-1])
    result["rss_gb"] = rss
    return result


def run_measured_in_tmp(argv: list[str]) -> tuple[float, float, str]:
    """:func:`bench.run_measured` from ``/tmp``, so the child imports its interpreter's installation."""
    here = os.getcwd()
    os.chdir("/tmp")
    try:
        return run_measured(argv)
    finally:
        os.chdir(here)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log")
    parser.add_argument("--baseline", help="a Python whose custscore is the one to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dates", nargs="+", default=list(DATES))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)), flush=True)
        return
    if not args.log:
        parser.error("--log is required")
    pythons = {"this": sys.executable} | ({"baseline": args.baseline} if args.baseline else {})
    totals: dict[str, list[float]] = {name: [] for name in pythons}
    cpus: dict[str, list[float]] = {name: [] for name in pythons}
    for round_ in range(1, args.rounds + 1):
        for name, python in (reversed(pythons.items()) if round_ % 2 else pythons.items()):
            load = os.getloadavg()[0]
            result = run(python, args.log, tuple(args.dates))
            total = sum(result["seconds"].values())
            totals[name].append(total)
            cpus[name].append(result["cpu_seconds"])
            per_date = "  ".join(f"{d} {s:.2f} s" for d, s in result["seconds"].items())
            print(f"round {round_} {name:<8} load {load:4.2f}  {per_date}  total {total:.2f} s (CPU {result['cpu_seconds']:.2f} s)  "
                  f"traced peak {result['traced_peak_gb']:.2f} GB  peak RSS {result['rss_gb']:.2f} GB  "
                  f"({result['custscore']})", flush=True)
    for what, values in (("wall", totals), ("CPU", cpus)):
        medians = {name: statistics.median(v) for name, v in values.items()}
        ratio = f"; baseline / this {medians['baseline'] / medians['this']:.2f}x" if "baseline" in medians else ""
        print(f"median {what} total: " + ", ".join(f"{name} {m:.2f} s" for name, m in medians.items()) + ratio)


if __name__ == "__main__":
    main()
