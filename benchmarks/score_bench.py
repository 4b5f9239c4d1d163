"""Where ``custscore score`` spends its time after the features: the scoring steps and the writers.

Loads a trained model (any ``--model`` URI ``score`` takes), computes the customer
features of ``--transactions`` at ``--as-of`` once (cached as Parquet under ``--workdir``,
so repeated runs isolate scoring from reading the log), then times, best of ``--repeats``:

- ``CustomerScorer.score_customers`` on the whole frame (one chunk, as the pandas engine gives);
- its steps alone: ``churn_reasons``, ``assign_segments``, ``clv_interval``, ``purchase_interval``;
- writing the scores with :class:`~custscore.serving.chunked_output.ChunkedTableWriter`
  as Parquet (and as CSV with ``--csv``).

``--save FILE.parquet`` keeps the scores; ``--check FILE.parquet`` compares them with a
saved table (same columns, dtypes, values and row order) and fails when they differ, so a
before/after pair shows the same output. Steps are timed in CPU seconds (all threads, best of
``--repeats``), steadier than the wall clock on a shared machine; ``score_customers`` in both.

    python benchmarks/score_bench.py --model runs:/RUN/model --tracking-uri sqlite:////tmp/scorefast/mlflow.db \
        --transactions /tmp/s8/tx_10m_customer.parquet --as-of 2023-12-31 --workdir /tmp/scorefast
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import best_of  # noqa: E402

from custscore.config import DAYS_PER_UNIT  # noqa: E402
from custscore.features.engines import iter_customer_features, open_engine  # noqa: E402
from custscore.features.rfm import duration_columns  # noqa: E402
from custscore.serving.chunked_output import ChunkedTableWriter  # noqa: E402
from custscore.training.churn import churn_features  # noqa: E402
from custscore.training.reasons import churn_reasons  # noqa: E402
from custscore.training.segments import assign_segments, required_columns  # noqa: E402
from custscore.training.uncertainty import clv_interval, purchase_interval  # noqa: E402


def features_of(path: str, as_of: pd.Timestamp, time_unit: str, workdir: Path) -> pd.DataFrame:
    cache = workdir / f"features_{Path(path).stem}_{as_of.date()}_{time_unit}.parquet"
    if not cache.exists():
        start = time.perf_counter()
        frame = pd.concat(list(iter_customer_features(open_engine(path), as_of, time_unit)))
        frame.to_parquet(cache)
        print(f"features of {len(frame):,} customers ({time.perf_counter() - start:.1f} s) -> {cache}", flush=True)
    return pd.read_parquet(cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--transactions", required=True)
    parser.add_argument("--as-of", default="2023-12-31")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench/score"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--check", type=Path, default=None)
    parser.add_argument("--csv", action="store_true", help="also time writing CSV")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    from custscore.serving.model_source import load_scorer_from_uri

    scorer, _ = load_scorer_from_uri(args.model)
    as_of = pd.Timestamp(args.as_of)
    customers = features_of(args.transactions, as_of, scorer.time_unit, args.workdir)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(customers):,} customers; churn model {scorer.churn_model}",
          flush=True)

    scores, seconds = best_of(args.repeats, lambda: scorer.score_customers(customers, as_of))
    _, cpu = best_of(args.repeats, lambda: scorer.score_customers(customers, as_of), time.process_time)
    print(f"score_customers: {seconds:.2f} s wall, {cpu:.2f} s CPU (all threads)", flush=True)
    horizon, unit = scorer.horizon_days, scorer.time_unit
    X = churn_features(customers, scorer.purchase_model, horizon, unit)
    A = X.to_numpy(dtype=float)
    x, t_x, T = (customers[c].to_numpy() for c in ("frequency", *duration_columns(unit)))
    monetary = customers["monetary_value"].to_numpy(dtype=float)
    spend = scorer.expected_avg_spend(x, monetary)
    inputs = scores.assign(**{c: customers[c].to_numpy() for c in required_columns(scorer.segment_config)
                              if c not in scores.columns and c in customers.columns})
    steps = {
        "churn_features": lambda: churn_features(customers, scorer.purchase_model, horizon, unit),
        "churn_reasons": lambda: churn_reasons(scorer.churn, A),
        "assign_segments": lambda: assign_segments(inputs, scorer.segment_config, scorer.segment_thresholds),
        "clv_interval": lambda: clv_interval(scorer.purchase_model, x, t_x, T, spend, horizon_days=horizon,
                                             days_per_unit=DAYS_PER_UNIT[unit],
                                             discount_rate_yearly=scorer.discount_rate,
                                             **scorer.spend_uncertainty(x, monetary)),
        "purchase_interval": lambda: purchase_interval(scorer.purchase_model, horizon / DAYS_PER_UNIT[unit], x, t_x, T),
    }
    for name, call in steps.items():
        print(f"  {name}: {best_of(args.repeats, call, time.process_time)[1]:.2f} s CPU", flush=True)
    for suffix in (".parquet", ".csv") if args.csv else (".parquet",):
        target = args.workdir / f"bench_scores{suffix}"

        def write() -> None:
            with ChunkedTableWriter(target) as writer:
                writer.write(scores)

        print(f"write {suffix}: {best_of(args.repeats, write, time.process_time)[1]:.2f} s CPU, "
              f"{target.stat().st_size / 1e6:.0f} MB",
              flush=True)
    if args.save is not None:
        scores.to_parquet(args.save, index=False)
    if args.check is not None:
        reference = pd.read_parquet(args.check)
        pd.testing.assert_frame_equal(scores, reference, check_exact=True)
        written = pd.read_parquet(args.workdir / "bench_scores.parquet")
        pd.testing.assert_frame_equal(written, reference, check_exact=True)
        print(f"same scores as {args.check} (scores and the written Parquet)", flush=True)


if __name__ == "__main__":
    main()
