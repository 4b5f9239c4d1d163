"""Time one covariate fit (Fader and Hardie 2007, note 019) on simulated customers with known coefficients.

The world of ``tests/test_covariates.py`` scaled up: a 0/1 covariate (40 % ones) and a
standard-normal one, T = 52 weeks for everyone, Pareto/NBD truth r 0.8, alpha 6, s 0.8,
beta 30 (weeks), gamma_alpha (0.5, -0.3), gamma_beta (-0.6, 0.3); BG/NBD truth r 0.8,
alpha 6, a 0.8, b 3, gamma_alpha (0.5, -0.3), gamma_a (0, 0.4), gamma_b (0, 0). Prints
the fit's seconds, its parameters and their standard errors.

    OPENBLAS_NUM_THREADS=1 python benchmarks/covariate_fit_bench.py --model pnbd --customers 100000
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

TRUTH = {
    "pnbd": {"r": 0.8, "alpha": 6.0, "s": 0.8, "beta": 30.0, "gamma_alpha_north": 0.5, "gamma_alpha_age": -0.3,
             "gamma_beta_north": -0.6, "gamma_beta_age": 0.3},
    "bgnbd": {"r": 0.8, "alpha": 6.0, "a": 0.8, "b": 3.0, "gamma_alpha_north": 0.5, "gamma_alpha_age": -0.3,
              "gamma_a_north": 0.0, "gamma_a_age": 0.4, "gamma_b_north": 0.0, "gamma_b_age": 0.0},
}
T_WEEKS = 52.0


def world(model: str, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(frequency, recency, T)`` and the covariates of ``n`` customers drawn from ``TRUTH[model]``."""
    from custscore.training.simulate import simulate_bgnbd, simulate_paretonbd

    rng = np.random.default_rng(seed)
    Z = pd.DataFrame({"north": (rng.random(n) < 0.4).astype(float), "age": rng.normal(size=n)})
    truth = TRUTH[model]

    def linked(param: str, sign: float) -> np.ndarray:
        return truth[param] * np.exp(sign * sum(truth[f"gamma_{param}_{c}"] * Z[c].to_numpy() for c in Z.columns))

    if model == "pnbd":
        data = simulate_paretonbd(n, truth["r"], linked("alpha", -1.0), truth["s"], linked("beta", -1.0), T_WEEKS,
                                  seed=seed + 1)
    else:
        data = simulate_bgnbd(n, truth["r"], linked("alpha", -1.0), linked("a", 1.0), linked("b", 1.0), T_WEEKS,
                              seed=seed + 1)
    return data, Z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(TRUTH), default="pnbd")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    from custscore.training.bgnbd import BetaGeoModel
    from custscore.training.paretonbd import ParetoNBDModel

    data, Z = world(args.model, args.customers, args.seed)
    model = ParetoNBDModel() if args.model == "pnbd" else BetaGeoModel()
    start = time.perf_counter()
    model.fit(data["frequency"], data["recency"], data["T"], covariates=Z)
    seconds = time.perf_counter() - start
    se = model.diagnostics_["standard_errors"]
    print(f"{args.model} covariate fit, {args.customers:,} customers: {seconds:.2f} s; "
          f"log-likelihood {model.log_likelihood_:.4f}")
    for name, true in TRUTH[args.model].items():
        print(f"  {name:18s} {model.params_[name]:9.4f} (SE {se[name]:.4f}, true {true})")


if __name__ == "__main__":
    main()
