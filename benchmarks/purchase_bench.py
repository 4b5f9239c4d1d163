"""Pareto/NBD and MBG/NBD against lifetimes, and scoring with intervals: issue #16's speed targets.

Every step runs in a fresh subprocess (``--child``, as :mod:`bench`), so steps cannot
inflate each other's time or memory.

1. Fits, side by side in one run: for each of ``--customers`` sizes, customers simulated
   with known parameters in days (:func:`custscore.training.simulate.simulate_paretonbd` /
   ``simulate_mbgnbd``; T uniform on 730..1095 whole days, recency floored to whole days,
   as a daily log gives them), then custscore's ``ParetoNBDModel`` / ``ModifiedBetaGeoModel``
   and lifetimes' ``ParetoNBDFitter`` / ``ModifiedBetaGeoFitter`` (defaults) on the same
   rows. Printed: seconds, the ratio, and both fits' log-likelihoods under custscore's
   per-customer likelihood and under lifetimes' own (target: custscore >= 20x faster and its
   log-likelihood >= lifetimes'). A lifetimes fit that runs past ``--lifetimes-timeout``
   seconds is stopped and reported as such.
2. Scoring with intervals: a scorer trained in process (no MLflow) with each
   ``--purchase-model`` on a ``benchmarks/generate.py`` log of ``--train-customers``, then
   ``CustomerScorer.score_customers`` (every score column: P(alive), expected purchases,
   p_no_purchase, purchases_p10/p90, clv, clv_p10/p90, churn, reasons, segments) on the
   features of a generated log of ``--score-customers`` (features computed once, untimed),
   best of ``--repeats``; the interval columns alone are timed too (target: < 10 s for 1M).

    OPENBLAS_NUM_THREADS=1 python benchmarks/purchase_bench.py --customers 100000 1000000 \\
        --workdir /tmp/bench/purchase
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import measured_child, start_run  # noqa: E402

#: True parameters of the simulated populations, days: the CDNOW sample fits (weeks) of
#: issue #16 with alpha, beta times 7.
TRUTH = {"pnbd": {"r": 0.553, "alpha": 74.046, "s": 0.606, "beta": 81.683},
         "mbgnbd": {"r": 0.525, "alpha": 43.281, "a": 0.891, "b": 1.614}}
#: Oldest and youngest customer (days since the first purchase).
T_RANGE = (730, 1095)
SEED = 16
CUTOFF, AS_OF, HORIZON = "2023-09-30", "2023-12-31", 90


def population(model: str, customers: int):
    """``(x, t_x, T)`` of ``customers`` simulated from ``TRUTH[model]`` (seeded, days)."""
    import numpy as np

    from custscore.training.simulate import simulate_mbgnbd, simulate_paretonbd

    T = np.random.default_rng(SEED).integers(T_RANGE[0], T_RANGE[1] + 1, customers).astype(float)
    simulate = simulate_paretonbd if model == "pnbd" else simulate_mbgnbd
    d = simulate(customers, **TRUTH[model], T=T, seed=SEED + 1)
    return d["frequency"].to_numpy(), np.floor(d["recency"].to_numpy()), d["T"].to_numpy()


def ours(model: str):
    from custscore.training.mbgnbd import ModifiedBetaGeoModel
    from custscore.training.paretonbd import ParetoNBDModel

    return (ParetoNBDModel if model == "pnbd" else ModifiedBetaGeoModel)()


def theirs(model: str):
    from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter

    return (ParetoNBDFitter if model == "pnbd" else ModifiedBetaGeoFitter)()


# ----------------------------------------------------------------------------- children
def child_fit(tool: str, model: str, customers: str) -> dict:
    x, t_x, T = population(model, int(customers))
    fitter = ours(model) if tool == "custscore" else theirs(model)
    start = time.perf_counter()
    fitter.fit(x, t_x, T)
    seconds = time.perf_counter() - start
    names = list(TRUTH[model])
    return {"seconds": seconds, "params": {n: float(fitter.params_[n]) for n in names}}


def child_log_likelihoods(model: str, customers: str, fits: str) -> dict:
    """Each fit's log-likelihood (summed over customers) under custscore's and lifetimes' functions."""
    import numpy as np

    x, t_x, T = population(model, int(customers))
    out = {}
    for tool, params in json.loads(fits).items():
        m = ours(model)
        m.params_ = params
        theta = np.array([params[n] for n in TRUTH[model]])
        if model == "pnbd":  # lifetimes: natural parameters, summed negative log-likelihood
            nll = type(theirs(model))._negative_log_likelihood(theta, x, t_x, T, np.ones(len(x)), 0.0)
        else:  # log parameters, mean per customer
            nll = type(theirs(model))._negative_log_likelihood(np.log(theta), x, t_x, T, np.ones(len(x)), 0.0) * len(x)
        out[tool] = {"custscore_fn": float(m.log_likelihood_per_customer(x, t_x, T).sum()), "lifetimes_fn": float(-nll)}
    return out


def child_score(model: str, train_log: str, score_log: str, repeats: str) -> dict:
    import pandas as pd

    from custscore.config import DAYS_PER_UNIT, TrainConfig
    from custscore.features.engines import iter_customer_features, open_engine
    from custscore.training.pipeline import train_scorer
    from custscore.training.uncertainty import clv_interval, purchase_interval

    start = time.perf_counter()
    config = TrainConfig(cutoff=CUTOFF, horizon_days=HORIZON, time_unit="D", tracking_uri="sqlite:///unused.db",
                         purchase_model=model)
    scorer = train_scorer(open_engine(train_log, engine="duckdb"), config).scorer
    train_seconds = time.perf_counter() - start
    as_of = pd.Timestamp(AS_OF)
    customers = pd.concat(list(iter_customer_features(open_engine(score_log, engine="duckdb"), as_of, "D")))
    best, best_intervals = float("inf"), float("inf")
    for _ in range(int(repeats)):
        start = time.perf_counter()
        scores = scorer.score_customers(customers, as_of)
        best = min(best, time.perf_counter() - start)
        x, t_x, T = (customers[c].to_numpy() for c in ("frequency", "recency_days", "T_days"))
        spend = scores["expected_avg_spend"].to_numpy()
        # the spend model's uncertainty as scoring passes it (code before it existed: none)
        monetary = customers["monetary_value"].to_numpy(dtype=float)
        extra = scorer.spend_uncertainty(x, monetary) if hasattr(scorer, "spend_uncertainty") else {}
        start = time.perf_counter()
        purchase_interval(scorer.purchase_model, HORIZON / DAYS_PER_UNIT["D"], x, t_x, T)
        clv_interval(scorer.purchase_model, x, t_x, T, spend, horizon_days=HORIZON, days_per_unit=1.0,
                     discount_rate_yearly=scorer.discount_rate, **extra)
        best_intervals = min(best_intervals, time.perf_counter() - start)
    inside = ((scores["clv_p10"] <= scores["clv"]) & (scores["clv"] <= scores["clv_p90"])).mean()
    return {"seconds": best, "intervals_seconds": best_intervals, "train_seconds": train_seconds,
            "customers": len(scores), "purchase_model": str(scores["purchase_model"].iloc[0]),
            "params": {k: float(v) for k, v in scorer.purchase_model.params_.items()},
            "clv_inside_interval": float(inside)}


CHILDREN = {"fit": child_fit, "log_likelihoods": child_log_likelihoods, "score": child_score}


# ----------------------------------------------------------------------------- parent
def timed_fit(tool: str, model: str, customers: int, timeout: float | None) -> dict | None:
    """The fit child's result, or None when it ran past ``timeout`` seconds (then it is killed)."""
    argv = [sys.executable, __file__, "--child", "fit", tool, model, str(customers)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise SystemExit(f"step failed ({' '.join(argv)}):\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt_params(params: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in params.items())


def fits(customers: list[int], models: list[str], timeout: float) -> list[str]:
    lines = []
    for n in customers:
        for model in models:
            print(f"1. {model} fit, {n:,} customers (truth: {fmt_params(TRUTH[model])})", flush=True)
            mine = timed_fit("custscore", model, n, timeout=None)
            print(f"  custscore {mine['seconds']:9.2f} s  {fmt_params(mine['params'])}", flush=True)
            other = timed_fit("lifetimes", model, n, timeout)
            if other is None:
                print(f"  lifetimes  stopped after {timeout:.0f} s (did not finish)", flush=True)
                lines.append(f"{model} fit, {n:,} customers: custscore {mine['seconds']:.2f} s, lifetimes > {timeout:.0f} s "
                             f"(stopped) -> > {timeout / mine['seconds']:.0f}x faster")
                continue
            print(f"  lifetimes {other['seconds']:9.2f} s  {fmt_params(other['params'])}", flush=True)
            ll = measured_child(__file__, "log_likelihoods", model, str(n),
                                json.dumps({"custscore": mine["params"], "lifetimes": other["params"]}))
            for fn in ("custscore_fn", "lifetimes_fn"):
                a, b = ll["custscore"][fn], ll["lifetimes"][fn]
                print(f"  log-likelihood ({fn}): custscore's fit {a:.4f}, lifetimes' fit {b:.4f}, "
                      f"custscore - lifetimes {a - b:+.4g}", flush=True)
            a, b = ll["custscore"]["custscore_fn"], ll["lifetimes"]["custscore_fn"]
            lines.append(f"{model} fit, {n:,} customers: custscore {mine['seconds']:.2f} s, lifetimes "
                         f"{other['seconds']:.2f} s -> {other['seconds'] / mine['seconds']:.1f}x faster; "
                         f"log-likelihood custscore - lifetimes {a - b:+.4g}")
    return lines


def scoring(workdir: Path, models: list[str], train_customers: int, score_customers: int, repeats: int) -> list[str]:
    from generate import generate

    logs = []
    for n, seed in ((train_customers, 1000), (score_customers, 0)):
        path = workdir / f"tx_{n}_{seed}.parquet"
        if not path.exists():
            start = time.perf_counter()
            rows = generate(n, path, seed=seed)
            print(f"generated {path}: {rows:,} transactions ({time.perf_counter() - start:.1f} s)", flush=True)
        logs.append(str(path))
    lines = []
    for model in models:
        print(f"2. score {score_customers:,} customers with intervals, --purchase-model {model} "
              f"(trained on {train_customers:,})", flush=True)
        r = measured_child(__file__, "score", model, *logs, str(repeats))
        print(f"  score_customers {r['seconds']:6.2f} s (intervals alone {r['intervals_seconds']:.2f} s), peak RSS "
              f"{r['rss_gb']:.2f} GB; training {r['train_seconds']:.1f} s; {r['customers']:,} customers, "
              f"{fmt_params(r['params'])}; clv inside [clv_p10, clv_p90]: {r['clv_inside_interval']:.4f}", flush=True)
        lines.append(f"score {r['customers']:,} customers with intervals ({model}): {r['seconds']:.2f} s "
                     f"(intervals {r['intervals_seconds']:.2f} s), peak RSS {r['rss_gb']:.2f} GB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="*", default=[1_000_000], help="fit sizes (none: skip fits)")
    parser.add_argument("--models", nargs="+", default=["pnbd", "mbgnbd"], choices=sorted(TRUTH))
    parser.add_argument("--lifetimes-timeout", type=float, default=3600.0, help="seconds (default %(default)s)")
    parser.add_argument("--score-customers", type=int, default=1_000_000, help="0: skip scoring")
    parser.add_argument("--score-models", nargs="+", default=["bgnbd", "mbgnbd", "pnbd"])
    parser.add_argument("--train-customers", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    args, work = start_run(parser, CHILDREN, "/tmp/bench/purchase")
    if work is None:
        return
    lines = fits(args.customers, args.models, args.lifetimes_timeout)
    if args.score_customers:
        lines += scoring(work, args.score_models, args.train_customers, args.score_customers, args.repeats)
    print("\nsummary")
    for line in lines:
        print(f"  {line}")


if __name__ == "__main__":
    main()
