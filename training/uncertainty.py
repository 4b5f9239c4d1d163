"""How sure a score is: purchase-count intervals and CLV intervals from parameter uncertainty.

- ``purchases_p10`` / ``purchases_p90``: the 10th and 90th percentiles of each customer's
  predictive distribution of repeat purchases in the horizon, P(X = k | x, t_x, T)
  (:meth:`~custscore.training.purchase_models.PurchaseModel.purchase_quantiles`).
- ``clv_p10`` / ``clv_p90``: percentiles of the CLV over :data:`CLV_DRAWS` parameter
  vectors of the purchase model drawn from its estimated sampling distribution: ``ln theta``
  normal around the fit with the covariance of the inverse observed information (delta
  method, ``Cov(ln theta) = D^-1 V D^-1``, ``D = diag(theta)``), so every draw is positive.
  The spend model stays at its point estimate. Draws are seeded (:data:`DRAW_SEED`): every
  scoring path gives the same interval. NaN when the fit has no positive-definite covariance.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from custscore.training.purchase_models import PurchaseModel
from custscore.training.value import expected_clv

#: Parameter vectors drawn for the CLV interval.
CLV_DRAWS = 100
#: Seed of the draws (fixed: batch, HTTP and pyfunc scores agree).
DRAW_SEED = 20260
#: The interval's levels (10th and 90th percentiles).
LEVELS = (0.1, 0.9)


def purchase_interval(model: PurchaseModel, t: float, frequency: Any, recency: Any,
                      T: Any) -> dict[str, np.ndarray]:
    """``purchases_p10`` and ``purchases_p90`` over the next ``t`` (model unit), shape ``(n,)`` each."""
    low, high = model.purchase_quantiles(t, frequency, recency, T, LEVELS)
    return {"purchases_p10": low, "purchases_p90": high}


def parameter_draws(model: PurchaseModel, n_draws: int = CLV_DRAWS, seed: int = DRAW_SEED) -> list[dict[str, float]]:
    """``n_draws`` parameter dicts with ``ln theta ~ N(ln theta_hat, D^-1 V D^-1)``; [] without a covariance."""
    variance = model.variance_matrix_
    if variance is None:
        return []
    names = list(variance.index)
    theta = np.array([model.params_[n] for n in names])
    cov = variance.to_numpy(dtype=float) / np.outer(theta, theta)
    if not np.all(np.isfinite(cov)):
        return []
    rng = np.random.default_rng(seed)
    draws = np.exp(rng.multivariate_normal(np.log(theta), cov, size=n_draws, method="eigh"))
    return [dict(zip(names, row.tolist())) for row in draws]


def clv_interval(model: PurchaseModel, frequency: Any, recency: Any, T: Any, expected_spend: Any,
                 horizon_days: float, days_per_unit: float, discount_rate_yearly: float) -> dict[str, np.ndarray]:
    """``clv_p10`` and ``clv_p90``: percentiles of :func:`expected_clv` over :func:`parameter_draws`."""
    n = len(np.atleast_1d(frequency))
    draws = parameter_draws(model)
    if not draws or n == 0:
        return {"clv_p10": np.full(n, np.nan), "clv_p90": np.full(n, np.nan)}
    values = np.empty((len(draws), n))
    for i, params in enumerate(draws):
        drawn = copy.copy(model)
        drawn.params_ = params
        values[i] = expected_clv(drawn, frequency, recency, T, expected_spend, horizon_days=horizon_days,
                                 days_per_unit=days_per_unit, discount_rate_yearly=discount_rate_yearly)
    low, high = np.quantile(values, LEVELS, axis=0)
    return {"clv_p10": low, "clv_p90": high}
