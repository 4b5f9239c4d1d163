"""Does the purchase-model choice on a customer sample agree with the choice on every customer?

For ``--validation-sample`` (``TrainConfig.validation_sample``): on a benchmark log (cutoff
2023-09-30, validation date R = cutoff - 90 days, as ``custscore train --horizon-days 90``
validates), each of BG/NBD, MBG/NBD and Pareto/NBD is fitted at R on a seeded sample of SIZE
customers (``training.sampling.sample_positions``; 0 = all) and predicts each customer's
purchases in (R, cutoff]. Printed per seed: the mean Poisson deviance of each, the choice,
and the paired deviance gaps to BG/NBD with their standard errors (per-customer terms).

    python benchmarks/validation_sample_agreement.py /tmp/s8/tx_10m_customer.parquet 250000 5
    python benchmarks/validation_sample_agreement.py /tmp/s8/tx_10m_customer.parquet 0 1
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from custscore.config import ColumnMap
from custscore.features.engines import open_engine
from custscore.features.lookup import reindex_fill
from custscore.training.purchase_choice import PURCHASE_MODELS
from custscore.training.sampling import sample_positions


def deviance_terms(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Per-customer Poisson deviance, written out here (purchase_choice.poisson_deviance is their mean)."""
    mu = np.maximum(mu, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * (np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))


def main(path: str, size: int, n_seeds: int) -> None:
    engine = open_engine(path, ColumnMap(), "auto")
    R, cutoff = pd.Timestamp("2023-07-02"), pd.Timestamp("2023-09-30")
    f = engine.customer_features(R, "D")
    actual = reindex_fill(engine.window_purchases(R, cutoff)["n_purchases"], f.index).astype(float)
    x, t_x, T = f["frequency"].to_numpy(), f["recency_days"].to_numpy(), f["T_days"].to_numpy()
    for seed in range(n_seeds):
        keep = sample_positions(len(f), size, seed)
        keep = np.arange(len(f)) if keep is None else keep
        start = time.time()
        dev = {}
        for key, cls in PURCHASE_MODELS.items():
            model = cls(n_starts=2).fit(x[keep], t_x[keep], T[keep])
            dev[key] = deviance_terms(actual[keep], model.expected_purchases(90.0, x[keep], t_x[keep], T[keep]))
        means = {k: round(float(v.mean()), 5) for k, v in dev.items()}
        gaps = {k: dev[k] - dev["bgnbd"] for k in ("mbgnbd", "pnbd")}
        text = "; ".join(f"{k} - bgnbd {g.mean():+.5f} (SE {g.std(ddof=1) / np.sqrt(g.size):.5f})" for k, g in gaps.items())
        print(f"seed {seed}: n {len(keep)} deviance {means} choice {min(means, key=means.get)}; {text} "
              f"{time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
