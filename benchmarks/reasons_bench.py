"""Speed of the churn reasons (``reason_1..3``) against plain scoring, in the same run.

Generates (once, under ``--workdir``) a training log and a scoring log with
``benchmarks/generate.py`` (BG/NBD + Gamma-Gamma customers, ~10 transactions each), trains
a scorer on the training log in process (no MLflow), computes the customer features of
the scoring log once, then times on those features:

- ``score_customers`` as shipped (reasons included),
- ``score_customers`` with the reasons left out (plain scoring: every other column),
- ``churn_reasons`` alone (contributions, picking, words),

best of ``--repeats``. The ratio printed is reasons / plain scoring.

    python benchmarks/reasons_bench.py --customers 5000000 --workdir /tmp/bench/reasons
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate  # noqa: E402

from custscore.config import TrainConfig  # noqa: E402
from custscore.features.engines import iter_customer_features, open_engine  # noqa: E402
from custscore.training import scorer as scorer_module  # noqa: E402
from custscore.training.churn import churn_features  # noqa: E402
from custscore.training.pipeline import train_scorer  # noqa: E402
from custscore.training.reasons import REASON_COLUMNS, churn_reasons  # noqa: E402

CUTOFF, AS_OF, HORIZON = "2023-09-30", "2023-12-31", 90


def log_of(workdir: Path, customers: int, seed: int) -> Path:
    path = workdir / f"tx_{customers}_{seed}.parquet"
    if not path.exists():
        start = time.perf_counter()
        rows = generate(customers, path, seed=seed)
        print(f"generated {path}: {rows:,} transactions ({time.perf_counter() - start:.1f} s)", flush=True)
    return path


def best_of(repeats: int, call) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return min(times), out


def no_reasons(model, A, k=len(REASON_COLUMNS)) -> dict[str, np.ndarray]:
    """Plain scoring: the reason columns empty, nothing computed."""
    empty = np.full(len(A), "", dtype=object)
    return {c: empty for c in REASON_COLUMNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000_000, help="customers scored (default %(default)s)")
    parser.add_argument("--train-customers", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench/reasons"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    train_log = log_of(args.workdir, args.train_customers, seed=1000)
    score_log = log_of(args.workdir, args.customers, seed=0)
    start = time.perf_counter()
    config = TrainConfig(cutoff=CUTOFF, horizon_days=HORIZON, time_unit="D", tracking_uri="sqlite:///unused.db")
    result = train_scorer(open_engine(train_log, engine="duckdb"), config)
    print(f"trained on {args.train_customers:,} customers ({time.perf_counter() - start:.1f} s): "
          f"churn model {result.scorer.churn_model}", flush=True)
    models = {result.scorer.churn_model: result.scorer}
    if result.churn is not None and result.churn.classifier is not None and "classifier" not in models:
        models["classifier"] = dataclasses.replace(result.scorer, churn=result.churn.classifier,
                                                   churn_model="classifier")

    start = time.perf_counter()
    as_of = pd.Timestamp(AS_OF)
    customers = pd.concat(list(iter_customer_features(open_engine(score_log, engine="duckdb"), as_of, "D")))
    print(f"features of {len(customers):,} customers ({time.perf_counter() - start:.1f} s)", flush=True)
    for name, scorer in models.items():
        X = churn_features(customers, scorer.purchase_model, HORIZON, "D").to_numpy(dtype=float)
        with mock.patch.object(scorer_module, "churn_reasons", no_reasons):
            plain, _ = best_of(args.repeats, lambda: scorer.score_customers(customers, as_of))
        shipped, scores = best_of(args.repeats, lambda: scorer.score_customers(customers, as_of))
        alone, reasons = best_of(args.repeats, lambda: churn_reasons(scorer.churn, X))
        n = len(customers)
        listed = np.mean([(reasons[c] != "").mean() for c in REASON_COLUMNS])
        print(f"{name}: {n:,} customers: score_customers {shipped:.1f} s with reasons, {plain:.1f} s without "
              f"(plain scoring); churn_reasons alone {alone:.1f} s = {alone / plain:.2f} x plain scoring "
              f"({1e6 * alone / n:.2f} us per customer; {100 * listed:.0f} % of reason cells filled)", flush=True)
        assert all(scores[c].tolist() == list(reasons[c]) for c in REASON_COLUMNS)  # the same texts

if __name__ == "__main__":
    main()
